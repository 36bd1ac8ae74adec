package machine

// taint is the kernel's taint mask (include/linux/panic.h bit numbers).
type taint uint32

const (
	taintProprietary taint = 1 << 0
	taintDie         taint = 1 << 7
	taintWarn        taint = 1 << 9
	taintOOTModule   taint = 1 << 12
	taintUnsigned    taint = 1 << 13
	taintSoftLockup  taint = 1 << 14
)

// taintLetters is taint_flags[] of kernel/panic.c: the letter when set and when clear, in bit order.
var taintLetters = [...][2]byte{
	{'P', 'G'}, {'F', ' '}, {'S', ' '}, {'R', ' '}, {'M', ' '}, {'B', ' '}, {'U', ' '}, {'D', ' '}, {'A', ' '}, {'W', ' '},
	{'C', ' '}, {'I', ' '}, {'O', ' '}, {'E', ' '}, {'L', ' '}, {'K', ' '}, {'X', ' '}, {'T', ' '}, {'N', ' '},
}

// kernelString is print_tainted().
func (t taint) kernelString() string {
	if t == 0 {
		return "Not tainted"
	}
	b := []byte("Tainted: ")
	for i, l := range taintLetters {
		if t&(1<<i) != 0 {
			b = append(b, l[0])
		} else {
			b = append(b, l[1])
		}
	}
	return string(b)
}

package printk_test

import (
	"errors"
	"fmt"

	"kemu/printk"
)

// guest is a one-string guest memory with one symbol.
type guest struct{}

const nameAddr, initAddr = 0xffff888000001000, 0xffffffffc0000000

func (guest) ReadString(addr uint64, max int) (string, error) {
	if addr == nameAddr {
		return "hello"[:min(max, 5)], nil
	}
	return "", errors.New("unmapped")
}

func (guest) Read(addr uint64, buf []byte) error { return errors.New("unmapped") }

func (guest) Symbolize(addr uint64) (string, uint64, uint64, string, bool) {
	if addr >= initAddr && addr < initAddr+0x40 {
		return "hello_init", addr - initAddr, 0x40, "hello", true
	}
	return "", 0, 0, "", false
}

// A machine's _printk handler formats with the guest's arguments and stores
// the text in the log; pr_cont continues the open record.
func Example() {
	f := printk.Formatter{Env: guest{}}
	var log printk.Log
	text := f.Format([]byte("\0016%s: loaded at %pS, err %pe\n"),
		&printk.SliceArgs{Values: []uint64{nameAddr, initAddr + 0x1a, uint64(1<<64 - 19)}})
	log.Printk(1_500_000, text)
	log.Printk(2_000_000, []byte("\0014checking"))
	log.Printk(2_500_000, []byte("\001c... ok\n"))
	fmt.Print(log.Dmesg())
	// Output:
	// [    0.001500] hello: loaded at hello_init+0x1a/0x40 [hello], err -ENODEV
	// [    0.002000] checking... ok
}

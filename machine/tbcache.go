package machine

/*
#cgo LDFLAGS: -lunicorn
#include <unicorn/unicorn.h>

// uc_ctl is variadic, which cgo cannot call; these wrap the two cache controls kemu uses.
static uc_err kemu_remove_cache(uc_engine *uc, uint64_t begin, uint64_t end) {
	return uc_ctl_remove_cache(uc, begin, end);
}
static uc_err kemu_flush_tb(uc_engine *uc) {
	return uc_ctl_flush_tlb(uc);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Unicorn caches translated code by guest address. When the same addresses are mapped again with
// other bytes (a freed module's area handed to the next module, init memory reused), the cached
// translations would run the old code, so every mapping change drops the translations of its range.

// dropTranslations forgets translated code in [begin, end).
func (m *Machine) dropTranslations(begin, end uint64) error {
	h := (*C.uc_engine)(unsafe.Pointer(m.cpu.Handle()))
	if e := C.kemu_remove_cache(h, C.uint64_t(begin), C.uint64_t(end)); e != C.UC_ERR_OK {
		return fmt.Errorf("drop translations %#x-%#x: %s", begin, end, C.GoString(C.uc_strerror(e)))
	}
	return nil
}

// dropAllTranslations empties the translation cache.
func (m *Machine) dropAllTranslations() error {
	h := (*C.uc_engine)(unsafe.Pointer(m.cpu.Handle()))
	if e := C.kemu_flush_tb(h); e != C.UC_ERR_OK {
		return fmt.Errorf("flush translations: %s", C.GoString(C.uc_strerror(e)))
	}
	return nil
}

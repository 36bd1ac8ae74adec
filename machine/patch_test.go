package machine

// retInt3x4 is what apply_returns leaves at a 5-byte `jmp __x86_return_thunk` (ret, then int3).
var retInt3x4 = []byte{0xc3, 0xcc, 0xcc, 0xcc, 0xcc}

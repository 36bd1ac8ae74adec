package machine

import (
	"syscall"
)

// The synchronous hash API's users (crypto/shash.c, crypto/api.c): crypto_alloc_shash finds the
// registered shash algorithm of highest priority whose name or driver name matches, pins its
// module, and builds the transform the way crypto_create_tfm lays it out (struct crypto_shash,
// whose embedded struct crypto_tfm points at the algorithm, then the algorithm's context); the
// shash calls run the algorithm's own functions in guest code. Module code reaches most of the API
// through inline helpers that read these structures directly (crypto_shash_init,
// crypto_shash_descsize, crypto_shash_digestsize), which is why the layout follows BTF exactly.
// Templates (hmac(sha256) and the like) are not instantiated: a name only a template could make is
// ENOENT, as the kernel answers when no module provides it.

// Crypto flags (include/linux/crypto.h).
const (
	cryptoAlgTypeShash = 0xe
	cryptoTfmNeedKey   = 0x1
	cryptoAlgOptKey    = 0x4000
)

func init() {
	register("crypto_alloc_shash", hCryptoAllocShash)
	register("crypto_destroy_tfm", hCryptoDestroyTfm)
	register("crypto_shash_update", hShashCall("update", 3))
	register("crypto_shash_final", hShashCall("final", 2))
	register("crypto_shash_finup", hCryptoShashFinup)
	register("crypto_shash_digest", hCryptoShashDigest)
	register("crypto_shash_setkey", hCryptoShashSetkey)
}

// prepareShash is what shash_prepare_alg writes into an algorithm as it registers: its type in
// cra_flags and cra_type.
func (m *Machine) prepareShash(base uint64) error {
	flags, err := m.readField("crypto_alg", "cra_flags", base, 4)
	if err != nil {
		return err
	}
	if err := m.WriteU32(base+m.offset("crypto_alg", "cra_flags"), uint32(flags&^cryptoAlgTypeMask|cryptoAlgTypeShash)); err != nil {
		return err
	}
	if s, ok := m.prof.Lookup("crypto_shash_type"); ok {
		return m.WriteU64(base+m.offset("crypto_alg", "cra_type"), s.Addr)
	}
	return nil
}

// findShash is crypto_alg_lookup for a shash: among the registered algorithms of that type, an
// exact driver-name match, else the highest-priority one whose name matches.
func (m *Machine) findShash(name string) (base uint64, ok bool) {
	best := int32(-1 << 31)
	for _, r := range m.drivers().regs {
		if r.Kind != "crypto" {
			continue
		}
		flags, err := m.readField("crypto_alg", "cra_flags", r.addr, 4)
		if err != nil || flags&cryptoAlgTypeMask != cryptoAlgTypeShash {
			continue
		}
		a, err := m.readCryptoAlg(r.addr)
		if err != nil {
			continue
		}
		if a.driver == name {
			return r.addr, true
		}
		if a.name == name && a.priority > best {
			base, best, ok = r.addr, a.priority, true
		}
	}
	return base, ok
}

// crypto_alloc_shash(name, type, mask): the transform, or ERR_PTR (ENOENT: no such algorithm; a
// module going away: ENOENT too, as crypto_mod_get fails).
func hCryptoAllocShash(m *Machine, t *Trap) (uint64, error) {
	name, err := m.ReadCString(t.Arg(0), cryptoMaxAlgName)
	if err != nil {
		return errPtr(syscall.EFAULT), nil
	}
	base, ok := m.findShash(name)
	if !ok {
		return errPtr(syscall.ENOENT), nil
	}
	owner, err := m.readField("crypto_alg", "cra_module", base, 8)
	if err != nil {
		return 0, err
	}
	if !m.moduleGet(owner) {
		return errPtr(syscall.ENOENT), nil
	}
	shashSize, ok1 := m.structSize("crypto_shash")
	tfmSize, ok2 := m.structSize("crypto_tfm")
	if !ok1 || !ok2 {
		m.modulePut(owner)
		return errPtr(syscall.ENOENT), nil
	}
	ctx, err := m.readField("crypto_alg", "cra_ctxsize", base, 4)
	if err != nil {
		return 0, err
	}
	tfmOff := m.offset("crypto_shash", "base")
	hash := m.kmalloc(max(shashSize, tfmOff+tfmSize)+ctx, t.caller(), gfpZero)
	if hash == 0 {
		m.modulePut(owner)
		return errPtr(syscall.ENOMEM), nil
	}
	tfm := hash + tfmOff
	alg := base - m.offset("shash_alg", "base")
	descsize, err := m.readField("shash_alg", "descsize", alg, 4)
	if err != nil {
		return 0, err
	}
	if err := m.WriteU64(tfm+m.offset("crypto_tfm", "__crt_alg"), base); err != nil {
		return 0, err
	}
	if err := m.WriteU32(hash+m.offset("crypto_shash", "descsize"), uint32(descsize)); err != nil {
		return 0, err
	}
	if setkey, _ := m.structWord("shash_alg", "setkey", alg); setkey != 0 {
		flags, _ := m.readField("crypto_alg", "cra_flags", base, 4)
		if flags&cryptoAlgOptKey == 0 {
			if err := m.WriteU32(tfm+m.offset("crypto_tfm", "crt_flags"), cryptoTfmNeedKey); err != nil {
				return 0, err
			}
		}
	}
	// crypto_shash_init_tfm, then the algorithm's own init: a failure undoes the allocation.
	init, _ := m.structWord("shash_alg", "init_tfm", alg)
	arg := hash
	if init == 0 {
		init, _ = m.structWord("crypto_alg", "cra_init", base)
		arg = tfm
	}
	if init != 0 {
		ret, err := m.Call(init, arg)
		if err != nil {
			return 0, err
		}
		if e := int32(ret); e < 0 {
			m.modulePut(owner)
			return uint64(int64(e)), m.kfree(hash, t.caller())
		}
	}
	return hash, nil
}

// crypto_destroy_tfm(mem, tfm): the algorithm's exit, then the memory and the module reference.
func hCryptoDestroyTfm(m *Machine, t *Trap) (uint64, error) {
	mem, tfm := t.Arg(0), t.Arg(1)
	if mem == 0 || isErrPtr(mem) {
		return 0, nil
	}
	base, err := m.structWord("crypto_tfm", "__crt_alg", tfm)
	if err != nil {
		return 0, err
	}
	alg := base - m.offset("shash_alg", "base")
	if flags, _ := m.readField("crypto_alg", "cra_flags", base, 4); flags&cryptoAlgTypeMask == cryptoAlgTypeShash {
		exit, _ := m.structWord("shash_alg", "exit_tfm", alg)
		arg := mem
		if exit == 0 {
			exit, _ = m.structWord("crypto_alg", "cra_exit", base)
			arg = tfm
		}
		if exit != 0 {
			if _, err := m.Call(exit, arg); err != nil {
				return 0, err
			}
		}
	}
	owner, _ := m.readField("crypto_alg", "cra_module", base, 8)
	m.modulePut(owner)
	return 0, m.kfree(mem, t.caller())
}

// shashOf is the shash_alg and crypto_tfm behind a descriptor's transform.
func (m *Machine) shashOf(desc uint64) (alg, tfm uint64, err error) {
	hash, err := m.structWord("shash_desc", "tfm", desc)
	if err != nil {
		return 0, 0, err
	}
	return m.shashOfTfm(hash)
}

// shashOfTfm is the shash_alg behind a struct crypto_shash, and the crypto_tfm embedded in it
// (crypto_shash_alg's walk: hash->base.__crt_alg, then container_of to the shash_alg).
func (m *Machine) shashOfTfm(hash uint64) (alg, tfm uint64, err error) {
	tfm = hash + m.offset("crypto_shash", "base")
	base, err := m.structWord("crypto_tfm", "__crt_alg", tfm)
	if err != nil {
		return 0, 0, err
	}
	return base - m.offset("shash_alg", "base"), tfm, nil
}

// hShashCall runs one of the algorithm's functions on the descriptor with the call's arguments
// (crypto_shash_update(desc, data, len), crypto_shash_final(desc, out)).
func hShashCall(fn string, nargs int) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		alg, _, err := m.shashOf(t.Arg(0))
		if err != nil {
			return 0, err
		}
		f, err := m.structWord("shash_alg", fn, alg)
		if err != nil || f == 0 {
			return negErrno(syscall.ENOSYS), err
		}
		args := make([]uint64, nargs)
		for i := range args {
			args[i] = t.Arg(i)
		}
		return m.Call(f, args...)
	}
}

// crypto_shash_finup(desc, data, len, out): the algorithm's finup, or update then final.
func hCryptoShashFinup(m *Machine, t *Trap) (uint64, error) {
	alg, _, err := m.shashOf(t.Arg(0))
	if err != nil {
		return 0, err
	}
	return m.shashFinup(alg, t.Arg(0), t.Arg(1), t.Arg(2), t.Arg(3))
}

func (m *Machine) shashFinup(alg, desc, data, n, out uint64) (uint64, error) {
	if finup, _ := m.structWord("shash_alg", "finup", alg); finup != 0 {
		return m.Call(finup, desc, data, n, out)
	}
	update, _ := m.structWord("shash_alg", "update", alg)
	final, _ := m.structWord("shash_alg", "final", alg)
	if update == 0 || final == 0 {
		return negErrno(syscall.ENOSYS), nil
	}
	if ret, err := m.Call(update, desc, data, n); err != nil || int32(ret) < 0 {
		return ret, err
	}
	return m.Call(final, desc, out)
}

// crypto_shash_digest(desc, data, len, out): ENOKEY for a keyed algorithm without its key, else
// the algorithm's digest, or init then finup.
func hCryptoShashDigest(m *Machine, t *Trap) (uint64, error) {
	desc := t.Arg(0)
	alg, tfm, err := m.shashOf(desc)
	if err != nil {
		return 0, err
	}
	if flags, _ := m.readField("crypto_tfm", "crt_flags", tfm, 4); flags&cryptoTfmNeedKey != 0 {
		return negErrno(syscall.ENOKEY), nil
	}
	if digest, _ := m.structWord("shash_alg", "digest", alg); digest != 0 {
		return m.Call(digest, desc, t.Arg(1), t.Arg(2), t.Arg(3))
	}
	init, _ := m.structWord("shash_alg", "init", alg)
	if init == 0 {
		return negErrno(syscall.ENOSYS), nil
	}
	if ret, err := m.Call(init, desc); err != nil || int32(ret) < 0 {
		return ret, err
	}
	return m.shashFinup(alg, desc, t.Arg(1), t.Arg(2), t.Arg(3))
}

// crypto_shash_setkey(tfm, key, keylen): the algorithm's setkey (ENOSYS without one, as
// shash_no_setkey); success clears the transform's need for a key, failure sets it again.
func hCryptoShashSetkey(m *Machine, t *Trap) (uint64, error) {
	hash := t.Arg(0)
	alg, tfm, err := m.shashOfTfm(hash)
	if err != nil {
		return 0, err
	}
	setkey, _ := m.structWord("shash_alg", "setkey", alg)
	if setkey == 0 {
		return negErrno(syscall.ENOSYS), nil
	}
	ret, err := m.Call(setkey, hash, t.Arg(1), t.Arg(2))
	if err != nil {
		return 0, err
	}
	flagsAt := tfm + m.offset("crypto_tfm", "crt_flags")
	flags, err := m.ReadU32(flagsAt)
	if err != nil {
		return 0, err
	}
	if int32(ret) < 0 {
		flags |= cryptoTfmNeedKey
	} else {
		flags &^= cryptoTfmNeedKey
	}
	return ret, m.WriteU32(flagsAt, flags)
}

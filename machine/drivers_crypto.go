package machine

import (
	"fmt"
	"syscall"
)

// Crypto algorithm and template registration (crypto/algapi.c). Every algorithm type embeds a
// struct crypto_alg; the register function of each type finds it, the kernel's crypto_check_alg
// validates it, and __crypto_register_alg refuses a name clash with EEXIST. kemu runs no
// self-tests (cryptomgr would test each algorithm as it registers).

// cryptoType is one family of algorithm structures: where its struct crypto_alg is.
type cryptoType struct {
	structName string // shash_alg, skcipher_alg, ...; "crypto_alg" for the base type
	basePath   string // the embedded struct crypto_alg ("" when the struct is one)
}

const cryptoMaxAlgName = 128 // CRYPTO_MAX_ALG_NAME

// Limits of crypto_check_alg (include/crypto/algapi.h).
const (
	maxAlgapiAlignmask = 63
	maxAlgapiBlocksize = 160
	maxCipherAlignmask = 15
	maxCipherBlocksize = 16
	cryptoAlgTypeMask  = 0xf
	cryptoAlgTypeCiph  = 0x1
)

func init() {
	// Each type's register and unregister functions, singular and (where the kernel has one) plural.
	types := []struct {
		single, plural string
		cryptoType
	}{
		{"alg", "algs", cryptoType{"crypto_alg", ""}},
		{"shash", "shashes", cryptoType{"shash_alg", "base"}},
		{"ahash", "ahashes", cryptoType{"ahash_alg", "halg.base"}},
		{"skcipher", "skciphers", cryptoType{"skcipher_alg", "base"}},
		{"aead", "aeads", cryptoType{"aead_alg", "base"}},
		{"akcipher", "", cryptoType{"akcipher_alg", "base"}},
		{"kpp", "", cryptoType{"kpp_alg", "base"}},
		{"rng", "rngs", cryptoType{"rng_alg", "base"}},
		{"scomp", "scomps", cryptoType{"scomp_alg", "base"}},
		{"acomp", "acomps", cryptoType{"acomp_alg", "base"}},
	}
	for _, ct := range types {
		register("crypto_register_"+ct.single, hCryptoRegister(ct.cryptoType, false))
		register("crypto_unregister_"+ct.single, hCryptoUnregister(ct.cryptoType, false))
		if ct.plural != "" {
			register("crypto_register_"+ct.plural, hCryptoRegister(ct.cryptoType, true))
			register("crypto_unregister_"+ct.plural, hCryptoUnregister(ct.cryptoType, true))
		}
	}
	register("crypto_register_template", hCryptoRegisterTemplate(false))
	register("crypto_register_templates", hCryptoRegisterTemplate(true))
	register("crypto_unregister_template", hCryptoUnregisterTemplate(false))
	register("crypto_unregister_templates", hCryptoUnregisterTemplate(true))
}

// cryptoAlg is what registration reads of a struct crypto_alg.
type cryptoAlg struct {
	name, driver                      string
	priority                          int32
	flags, blocksize, alignmask, ctyp uint64
}

func (m *Machine) readCryptoAlg(base uint64) (cryptoAlg, error) {
	const s = "crypto_alg"
	var a cryptoAlg
	var err error
	if a.name, err = m.readArrayString(s, "cra_name", base, cryptoMaxAlgName); err != nil {
		return a, err
	}
	if a.driver, err = m.readArrayString(s, "cra_driver_name", base, cryptoMaxAlgName); err != nil {
		return a, err
	}
	prio, err := m.readField(s, "cra_priority", base, 4)
	if err != nil {
		return a, err
	}
	a.priority = int32(prio)
	for _, f := range []struct {
		name string
		size int
		dst  *uint64
	}{{"cra_flags", 4, &a.flags}, {"cra_blocksize", 4, &a.blocksize}, {"cra_alignmask", 4, &a.alignmask}, {"cra_type", 8, &a.ctyp}} {
		if *f.dst, err = m.readField(s, f.name, base, f.size); err != nil {
			return a, err
		}
	}
	return a, nil
}

// check is crypto_check_alg: EINVAL for a nameless algorithm or one beyond the API's limits.
func (a cryptoAlg) check() syscall.Errno {
	switch {
	case a.name == "" || a.driver == "",
		a.alignmask&(a.alignmask+1) != 0,
		a.alignmask > maxAlgapiAlignmask,
		a.blocksize > maxAlgapiBlocksize,
		a.ctyp == 0 && a.flags&cryptoAlgTypeMask == cryptoAlgTypeCiph &&
			(a.alignmask > maxCipherAlignmask || a.blocksize > maxCipherBlocksize),
		a.priority < 0:
		return syscall.EINVAL
	}
	return 0
}

// registerCryptoAlg registers the crypto_alg at base: EEXIST when it is registered already or its
// name is a registered algorithm's driver name or the other way round, as __crypto_register_alg
// decides.
func (m *Machine) registerCryptoAlg(t *Trap, base uint64) (uint64, error) {
	a, err := m.readCryptoAlg(base)
	if err != nil {
		return 0, err
	}
	if e := a.check(); e != 0 {
		return negErrno(e), nil
	}
	for _, r := range m.drivers().regs {
		if r.Kind != "crypto" {
			continue
		}
		driver := ""
		if len(r.IDs) > 0 {
			driver = r.IDs[0]
		}
		// 6.1 compares each name with the other's driver name only: a stable patch that also
		// refused identical driver names was reverted.
		if r.addr == base || driver == a.name || r.Name == a.driver {
			return negErrno(syscall.EEXIST), nil
		}
	}
	m.record(t, "crypto", a.name, base, []string{a.driver, fmt.Sprintf("priority=%d", a.priority)})
	return 0, nil
}

// registerTable is the objects a register call names: the one at arg 0 or, plural, the count
// (arg 1, bounded) elements of size bytes in the array there; off selects a member of each.
func registerTable(t *Trap, plural bool, size, off uint64) []uint64 {
	count := uint64(1)
	if plural {
		count = min(uint64(uint32(t.Arg(1))), maxTableEntries)
	}
	objs := make([]uint64, count)
	for i := range objs {
		objs[i] = t.Arg(0) + uint64(i)*size + off
	}
	return objs
}

// cryptoAlgs are the struct crypto_alg addresses a crypto_(un)register_<type>(alg) call names, or,
// plural, crypto_(un)register_<type>s(algs, count): each element's embedded base algorithm.
func (m *Machine) cryptoAlgs(t *Trap, ct cryptoType, plural bool) ([]uint64, bool) {
	off, size, ok := m.cryptoLayout(ct)
	if !ok {
		return nil, false
	}
	return registerTable(t, plural, size, off), true
}

// hCryptoRegister is crypto_register_<type>(alg) or, plural, crypto_register_<type>s(algs, count):
// the plural registers in order and on a failure unregisters the ones before it.
func hCryptoRegister(ct cryptoType, plural bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		algs, _ := m.cryptoAlgs(t, ct, plural) // a type this BTF lacks: nothing to register, success
		for i, alg := range algs {
			if ct.structName == "shash_alg" {
				if err := m.prepareShash(alg); err != nil {
					return 0, err
				}
			}
			ret, err := m.registerCryptoAlg(t, alg)
			if err != nil || ret != 0 {
				for _, done := range algs[:i] {
					m.unrecord("crypto", done)
				}
				return ret, err
			}
		}
		return 0, nil
	}
}

func hCryptoUnregister(ct cryptoType, plural bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		algs, _ := m.cryptoAlgs(t, ct, plural)
		for _, alg := range algs {
			m.unrecord("crypto", alg)
		}
		return 0, nil
	}
}

// cryptoLayout is the offset of the crypto_alg in ct's structure and the structure's size.
func (m *Machine) cryptoLayout(ct cryptoType) (off, size uint64, ok bool) {
	if size, ok = m.structSize(ct.structName); !ok {
		return 0, 0, false
	}
	if ct.basePath == "" {
		return 0, size, true
	}
	off, ok = m.fieldOffset(ct.structName, ct.basePath)
	return off, size, ok
}

// hCryptoRegisterTemplate is crypto_register_template(tmpl) (EEXIST for a template already on the
// list, by address; the kernel compares the pointer only) and crypto_register_templates(tmpls, n).
func hCryptoRegisterTemplate(plural bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		size, ok := m.structSize("crypto_template")
		if !ok {
			return 0, nil
		}
		tmpls := registerTable(t, plural, size, 0)
		for i, tmpl := range tmpls {
			name, err := m.readArrayString("crypto_template", "name", tmpl, cryptoMaxAlgName)
			if err != nil {
				return 0, err
			}
			if m.registered("crypto-template", tmpl, "") >= 0 {
				for _, done := range tmpls[:i] {
					m.unrecord("crypto-template", done)
				}
				return negErrno(syscall.EEXIST), nil
			}
			m.record(t, "crypto-template", name, tmpl, nil)
		}
		return 0, nil
	}
}

func hCryptoUnregisterTemplate(plural bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		size, ok := m.structSize("crypto_template")
		if !ok {
			return 0, nil
		}
		for _, tmpl := range registerTable(t, plural, size, 0) {
			m.unrecord("crypto-template", tmpl)
		}
		return 0, nil
	}
}

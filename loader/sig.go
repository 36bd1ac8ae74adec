package loader

import (
	"errors"
	"syscall"

	"kemu/modsign"
)

// sigCheck is module_sig_check(): it strips an appended signature, verifies it against the trusted
// certificates and returns the image the ELF checks see. An unsigned module, one signed with an unknown
// key or unsupported crypto loads (tainted E later) unless signatures are enforced; a malformed or
// rejected signature fails whatever the policy. Forced loads (modversions or vermagic ignored) are
// treated as unsigned, as the kernel considers them mangled.
func (info *loadInfo) sigCheck(img []byte) ([]byte, error) {
	err := error(syscall.ENODATA)
	if info.opts.Flags&(IgnoreModversions|IgnoreVermagic) == 0 {
		payload, sig, serr := modsign.Split(img)
		switch {
		case serr != nil:
			img, err = payload, serr
		case sig != nil:
			img = payload
			if err = sig.Verify(payload, info.k.cfg.Certs); err == nil {
				info.sigOK = true
				return img, nil
			}
		}
	}
	var reason string
	switch {
	case errors.Is(err, syscall.ENODATA):
		reason = "unsigned module"
	case errors.Is(err, syscall.ENOPKG):
		reason = "module with unsupported crypto"
	case errors.Is(err, syscall.ENOKEY):
		reason = "module with unavailable key"
	default:
		le := &Error{Errno: Errno(err), Msg: err.Error()}
		var me *modsign.Error
		if errors.As(err, &me) {
			le.Msg = me.Msg
		}
		return nil, le
	}
	if info.k.cfg.SigEnforce {
		return nil, kerr(syscall.EKEYREJECTED, "Loading of %s is rejected", reason).at(LogNotice)
	}
	return img, nil
}

// stripSignature removes an appended signature without judging it.
func stripSignature(img []byte) ([]byte, bool) {
	payload, sig, err := modsign.Split(img)
	return payload, sig != nil || err != nil
}

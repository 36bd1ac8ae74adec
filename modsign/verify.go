package modsign

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"syscall"
)

// Verify checks the signature over payload (the module without its signature, as Split returns
// it) against trusted certificates, with the kernel's verdicts for a module signature:
//
//   - content embedded in the message: EBADMSG ("PKCS#7 signature with non-detached data");
//   - data type not pkcs7-data, or authenticated attributes present: EKEYREJECTED;
//   - no trusted certificate matches any signer (issuer and serial, or subjectKeyIdentifier): ENOKEY;
//   - a digest this build cannot compute, or a key type it cannot check: ENOPKG;
//   - a matching certificate whose key does not verify the signature: EKEYREJECTED.
//
// Like pkcs7_validate_trust, one verified signer suffices; ENOPKG outranks ENOKEY, and a
// rejection is returned at once.
func (s *Signature) Verify(payload []byte, certs []*x509.Certificate) error {
	if s.hasContent {
		return logged(syscall.EBADMSG, KernErr, "PKCS#7 signature with non-detached data")
	}
	if !s.dataType.Equal(oidData) {
		return logged(syscall.EKEYREJECTED, KernWarning, "PKCS7: Invalid module sig (not pkcs7-data)")
	}
	for _, signer := range s.Signers {
		if signer.HasAuthAttrs {
			return logged(syscall.EKEYREJECTED, KernWarning, "PKCS7: Invalid module sig (has authattrs)")
		}
	}
	var verdict error // the first ENOPKG; ENOKEY when there is none
	for _, signer := range s.Signers {
		err := signer.verify(payload, certs)
		switch {
		case err == nil:
			return nil
		case err == errNoTrustedKey:
		case errors.Is(err, syscall.ENOPKG):
			if verdict == nil {
				verdict = err
			}
		default:
			return err
		}
	}
	if verdict == nil {
		return sigErr(syscall.ENOKEY, "module signature: no trusted key matches the signer")
	}
	return verdict
}

// errNoTrustedKey is verify's answer for a signer no trusted certificate names, the usual one (a
// kernel without the distribution's key). Verify only compares with it and returns an error of its
// own, so the value is never handed out.
var errNoTrustedKey = sigErr(syscall.ENOKEY, "module signature: no trusted key matches the signer")

// verify checks one signer against the trusted certificates.
func (signer Signer) verify(payload []byte, certs []*x509.Certificate) error {
	hash := digestHash(signer.DigestOID)
	if hash == 0 || !hash.Available() {
		return sigErr(syscall.ENOPKG, "module signature: digest %s not supported", digestName(signer.DigestOID))
	}
	cert := signer.find(certs)
	if cert == nil {
		return errNoTrustedKey
	}
	h := hash.New()
	h.Write(payload)
	digest := h.Sum(nil)

	family := pkeyFamily(signer.PubKeyOID)
	var ok bool
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		ok = family == "rsa" && rsa.VerifyPKCS1v15(pub, hash, digest, signer.Sig) == nil
	case *ecdsa.PublicKey:
		ok = family == "ecdsa" && ecdsa.VerifyASN1(pub, digest, signer.Sig)
	default:
		return sigErr(syscall.ENOPKG, "module signature: %s key of certificate %q not supported", cert.PublicKeyAlgorithm, cert.Subject.CommonName)
	}
	if !ok {
		return sigErr(syscall.EKEYREJECTED, "module signature: %s/%s signature does not verify with key %q", family, digestName(signer.DigestOID), cert.Subject.CommonName)
	}
	return nil
}

// find returns the certificate the signer names, by issuer and serial number or by subject key
// identifier, as find_asymmetric_key matches a key's identifiers.
func (signer Signer) find(certs []*x509.Certificate) *x509.Certificate {
	for _, c := range certs {
		if c == nil {
			continue
		}
		if signer.Serial != nil && c.SerialNumber != nil &&
			c.SerialNumber.Cmp(signer.Serial) == 0 && bytes.Equal(c.RawIssuer, signer.Issuer) {
			return c
		}
		if signer.SubjectKeyID != nil && bytes.Equal(c.SubjectKeyId, signer.SubjectKeyID) {
			return c
		}
	}
	return nil
}

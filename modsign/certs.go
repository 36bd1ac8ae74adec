package modsign

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadCerts reads X.509 certificates from files, each either PEM (any number of CERTIFICATE
// blocks; other blocks, such as the private key sign-file keeps next to the certificate, are
// skipped) or a single DER certificate (the form of certs/signing_key.x509).
func LoadCerts(paths ...string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load certificates: %w", err)
		}
		got, err := ParseCerts(data)
		if err != nil {
			return nil, fmt.Errorf("load certificates from %s: %w", path, err)
		}
		certs = append(certs, got...)
	}
	return certs, nil
}

// ParseCerts parses certificates from PEM or DER bytes, as LoadCerts does for one file.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, err
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no CERTIFICATE block in PEM data")
	}
	return certs, nil
}

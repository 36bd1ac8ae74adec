package profile

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseSymvers reads a Module.symvers file: one export a line, tab-separated as
//
//	crc	name	module	export-type	namespace
//
// (modpost writes the namespace column empty when the symbol has none; files from kernels before
// namespaces have only the first four columns). HasCRC is set on every row because the column is
// always present; a loader that knows CONFIG_MODVERSIONS=n clears it. Rows come back in file order.
func ParseSymvers(r io.Reader) ([]Export, error) {
	var exports []Export
	err := eachLine(r, "Module.symvers", func(text string) error {
		e, err := parseSymversLine(text)
		exports = append(exports, e)
		return err
	})
	if err != nil {
		return nil, err
	}
	return exports, nil
}

func parseSymversLine(text string) (Export, error) {
	cols := strings.Split(text, "\t")
	if len(cols) != 4 && len(cols) != 5 {
		return Export{}, fmt.Errorf("%d tab-separated columns, want 4 or 5: %q", len(cols), text)
	}
	crc, err := strconv.ParseUint(strings.TrimPrefix(cols[0], "0x"), 16, 32)
	if err != nil || !strings.HasPrefix(cols[0], "0x") {
		return Export{}, fmt.Errorf("bad CRC %q", cols[0])
	}
	if cols[1] == "" {
		return Export{}, fmt.Errorf("empty symbol name: %q", text)
	}
	e := Export{Name: cols[1], CRC: uint32(crc), HasCRC: true, Module: cols[2]}
	switch cols[3] {
	case "EXPORT_SYMBOL":
	case "EXPORT_SYMBOL_GPL":
		e.GPLOnly = true
	default:
		return Export{}, fmt.Errorf("unknown export type %q for %s", cols[3], e.Name)
	}
	if len(cols) == 5 {
		e.Namespace = cols[4]
	}
	return e, nil
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"kemu/profile"
)

// loadProfile returns the kernel profile every command runs against: the file or directory given
// with --kernel, or the embedded default.
func loadProfile() (*profile.Profile, error) {
	if global.kernel == "" {
		return profile.Default()
	}
	return profile.Load(global.kernel)
}

func init() {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Build and inspect kernel profiles",
		Long: `A kernel profile describes one built kernel: release, vermagic, config, System.map, Module.symvers
and BTF. kemu embeds Debian's 6.1.0-56-amd64 profile; --kernel selects another profile file or kernel directory.`,
	}
	cmd.AddCommand(profileBuildCmd(), profileShowCmd(), profileStructCmd(), profileVmlinuxCmd())
	addCommand(cmd)
}

func profileBuildCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "build DIR -o FILE",
		Short: "Write the compact profile of a kernel directory",
		Long: `Reads Module.symvers, System.map, the config and vmlinux/vmlinuz (for BTF and the version) from DIR,
either a plain directory or an unpacked Debian kernel (scripts/fetch-debian-kernel), and writes the compact profile.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("profile build: -o FILE is required")
			}
			p, err := profile.LoadDir(args[0])
			if err != nil {
				return err
			}
			if err := writeFileAtomic(out, func(w io.Writer) error { return profile.Write(w, p) }); err != nil {
				return err
			}
			st, err := os.Stat(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, %d bytes\n", out, p, st.Size())
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "profile file to write")
	return c
}

func profileVmlinuxCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "vmlinux VMLINUZ -o FILE",
		Short: "Extract vmlinux (ELF) from an xz-compressed bzImage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("profile vmlinux: -o FILE is required")
			}
			image, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			vmlinux, err := profile.ExtractVmlinux(image)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return writeFileAtomic(out, func(w io.Writer) error { _, err := w.Write(vmlinux); return err })
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "vmlinux file to write")
	return c
}

// profileSummary is what `kemu profile show` reports.
type profileSummary struct {
	Release     string            `json:"release"`
	Version     string            `json:"version"`
	Vermagic    string            `json:"vermagic"`
	Symbols     int               `json:"symbols"`
	Exports     int               `json:"exports"`
	GPLExports  int               `json:"gpl_exports"`
	Namespaced  int               `json:"namespaced_exports"`
	ConfigCount int               `json:"config_options"`
	BTFBytes    int               `json:"btf_bytes"`
	Config      map[string]string `json:"config"` // the options that shape module loading and execution
}

// shownConfig are the options a module author asks about first.
var shownConfig = []string{
	"CONFIG_SMP", "CONFIG_NR_CPUS", "CONFIG_PREEMPT_BUILD", "CONFIG_PREEMPT_DYNAMIC", "CONFIG_PREEMPT_RT",
	"CONFIG_MODULES", "CONFIG_MODULE_UNLOAD", "CONFIG_MODVERSIONS", "CONFIG_MODULE_SIG", "CONFIG_MODULE_SIG_ALL",
	"CONFIG_MODULE_SIG_HASH", "CONFIG_MODULE_COMPRESS_XZ", "CONFIG_RETPOLINE", "CONFIG_RETHUNK",
	"CONFIG_X86_KERNEL_IBT", "CONFIG_STACKPROTECTOR_STRONG", "CONFIG_KASAN", "CONFIG_RANDOMIZE_BASE",
	"CONFIG_PGTABLE_LEVELS", "CONFIG_STRICT_MODULE_RWX", "CONFIG_DEBUG_INFO_BTF", "CONFIG_HZ",
}

func profileShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show [FILE|DIR]",
		Short: "Summarise a kernel profile (default: --kernel, else the embedded one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p *profile.Profile
			var err error
			if len(args) == 1 {
				p, err = profile.Load(args[0])
			} else {
				p, err = loadProfile()
			}
			if err != nil {
				return err
			}
			s := summarise(p)
			out := cmd.OutOrStdout()
			if global.json {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			fmt.Fprintf(out, "release:   %s\n", s.Release)
			fmt.Fprintf(out, "version:   %s\n", s.Version)
			fmt.Fprintf(out, "vermagic:  %q\n", s.Vermagic)
			fmt.Fprintf(out, "symbols:   %d (System.map)\n", s.Symbols)
			fmt.Fprintf(out, "exports:   %d (%d GPL-only, %d in a namespace)\n", s.Exports, s.GPLExports, s.Namespaced)
			fmt.Fprintf(out, "config:    %d options set\n", s.ConfigCount)
			fmt.Fprintf(out, "btf:       %d bytes\n", s.BTFBytes)
			names := make([]string, 0, len(s.Config))
			for n := range s.Config {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(out, "  %s=%s\n", n, s.Config[n])
			}
			return nil
		},
	}
}

func profileStructCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "struct NAME [FIELD...]",
		Short: "Print a kernel struct's layout from BTF, or where the given (dotted) fields are",
		Example: `  kemu profile struct module
  kemu profile struct module state mkobj.kobj.name list.next`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadProfile()
			if err != nil {
				return err
			}
			s, err := p.Struct(args[0])
			if err != nil {
				return err
			}
			fields := s.Members()
			if len(args) > 1 {
				fields = fields[:0]
				for _, path := range args[1:] {
					f, err := s.Field(path)
					if err != nil {
						return err
					}
					fields = append(fields, f)
				}
			}
			out := cmd.OutOrStdout()
			if global.json {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Name   string          `json:"name"`
					Union  bool            `json:"union"`
					Size   uint64          `json:"size"`
					Fields []profile.Field `json:"fields"`
				}{s.Name, s.Union, s.Size, fields})
			}
			kind := "struct"
			if s.Union {
				kind = "union"
			}
			fmt.Fprintf(out, "%s %s: size %d\n", kind, s.Name, s.Size)
			for _, f := range fields {
				where := strconv.FormatUint(f.Offset, 10) // bitfields: byte:bit
				if f.BitSize != 0 {
					where += ":" + strconv.FormatUint(f.BitOffset%8, 10)
				}
				name := f.Path
				if name == "" {
					name = "(anonymous)"
				}
				fmt.Fprintf(out, "  %8s %5d  %-32s %s", where, f.Size, name, f.Type)
				if f.BitSize != 0 {
					fmt.Fprintf(out, " :%d", f.BitSize)
				}
				fmt.Fprintln(out)
			}
			return nil
		},
	}
}

func summarise(p *profile.Profile) profileSummary {
	s := profileSummary{
		Release: p.Release, Version: p.Version, Vermagic: p.Vermagic,
		Symbols: len(p.Symbols), Exports: len(p.Exports), ConfigCount: len(p.Config), BTFBytes: len(p.BTF),
		Config: map[string]string{},
	}
	for _, e := range p.Exports {
		if e.GPLOnly {
			s.GPLExports++
		}
		if e.Namespace != "" {
			s.Namespaced++
		}
	}
	for _, name := range shownConfig {
		if v, ok := p.Config[name]; ok {
			s.Config[name] = v
		}
	}
	return s
}

// writeFileAtomic writes path through a temporary file in the same directory, so a failed or
// interrupted write never leaves a truncated file behind.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w := bufio.NewWriter(tmp)
	if err := write(w); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

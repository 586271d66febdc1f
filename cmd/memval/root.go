package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes. A profiled or validated program's own exit code is passed
// through by the commands that run one (exitError).
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed (I/O, a device error, a validation miss)
	exitUsage = 2 // bad input: flags, files, fields, values
)

// usageError marks bad input; it maps to exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit 2) with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// asUsage wraps err as a usage error unless it is nil.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// exitCodeError carries a specific exit code (the profiled child's, or 1 for
// a validation miss) with an optional message already printed or to print.
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return e.msg }

// streams are the command's standard streams, passed down instead of using
// os.Stdout so that tests can capture them.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

func newRootCmd(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "memval",
		Short: "Estimate, profile and validate GPU memory of transformer training",
		Long: `memval answers "will this fit?" and "why did it not?" for transformer training:
it estimates memory with several published formulas, records real GPU memory
over time through NVML (or a simulated H100 without a GPU), and measures how
wrong each formula is.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return c.Help()
		},
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	for _, add := range subcommands {
		root.AddCommand(add(s))
	}
	return root
}

// subcommands are memval's commands, each built by the constructor in a
// file of its own. A new command is added here.
var subcommands = []func(streams) *cobra.Command{
	newDevicesCmd,
	newEstimateCmd,
	newFitCmd,
	newParamsCmd,
	newProfileCmd,
	newSweepCmd,
	newValidateCmd,
}

func run(ctx context.Context, args []string, in io.Reader, out, errw io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(streams{in: in, out: out, err: errw})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(err, errw)
}

// exitCode prints err (if any) and maps it to the process exit code.
func exitCode(err error, errw io.Writer) int {
	if err == nil {
		return exitOK
	}
	var code *exitCodeError
	if errors.As(err, &code) {
		if code.msg != "" {
			fmt.Fprintln(errw, "memval:", code.msg)
		}
		return code.code
	}
	fmt.Fprintln(errw, "memval:", err)
	var usage *usageError
	if errors.As(err, &usage) || isCobraUsage(err) {
		return exitUsage
	}
	return exitError
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong number of arguments), which are not wrapped by SetFlagErrorFunc.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

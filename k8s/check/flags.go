package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// binaryFlags are the sidecar binary's flags as its --helpfull lists them: name -> type and
// default.
type binaryFlags map[string]flagInfo

type flagInfo struct{ kind, def string }

// loadBinaryFlags runs `binary --helpfull`, which prints every flag and exits 1 (gflags'
// convention): its output is what counts.
func loadBinaryFlags(binary string) (binaryFlags, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("sidecar binary not found (%v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, binary, "--helpfull").CombinedOutput()
	flags := parseHelpfull(string(out))
	if _, ok := flags["brokers"]; !ok {
		return nil, fmt.Errorf("`%s --helpfull` listed no --brokers; its output starts: %.300s",
			binary, out)
	}
	if _, ok := flags["flagfile"]; !ok {
		return nil, fmt.Errorf("`%s --helpfull` listed no --flagfile", binary)
	}
	return flags, nil
}

var (
	helpFlagStart = regexp.MustCompile(`^    -([A-Za-z0-9_]+) \(`)
	helpSection   = regexp.MustCompile(`^\s*Flags from `)
	helpTypeDef   = regexp.MustCompile(`type: (\S+)\s+default: (.*)$`)
	helpQuoted    = regexp.MustCompile(`^"(.*?)"(\s|$)`)
)

// parseHelpfull reads gflags' help: `    -name (description...) type: T default: D`, wrapped
// over lines. A string's default is quoted, and may be followed by "currently: ...".
func parseHelpfull(text string) binaryFlags {
	flags := binaryFlags{}
	current, block := "", []string{}
	finish := func() {
		if current == "" {
			return
		}
		info := flagInfo{}
		if m := helpTypeDef.FindStringSubmatch(strings.Join(block, " ")); m != nil {
			info.kind = m[1]
			def := strings.TrimSpace(m[2])
			if q := helpQuoted.FindStringSubmatch(def); q != nil {
				info.def = q[1]
			} else if fields := strings.Fields(def); len(fields) > 0 {
				info.def = fields[0]
			}
		}
		flags[current] = info
		current, block = "", nil
	}
	for _, line := range strings.Split(text, "\n") {
		switch m := helpFlagStart.FindStringSubmatch(line); {
		case m != nil:
			finish()
			current, block = m[1], []string{strings.TrimSpace(line)}
		case helpSection.MatchString(line) || strings.TrimSpace(line) == "":
			finish()
		case current != "":
			block = append(block, strings.TrimSpace(line))
		}
	}
	finish()
	return flags
}

// unknown returns the names gflags would reject (it also takes --noNAME for a bool NAME).
func (b binaryFlags) unknown(names []string) []string {
	var bad []string
	for _, name := range names {
		if _, ok := b[name]; ok {
			continue
		}
		if strings.HasPrefix(name, "no") && b[name[2:]].kind == "bool" {
			continue
		}
		bad = append(bad, "--"+name)
	}
	return bad
}

// A name is what gflags would look up: letters, digits and underscores, but anything up to "="
// is taken, so that a misspelling such as --max-buffered-records, or "--listen 127.0.0.1:1" as
// one argument or flag-file line, is reported, not skipped.
var flagToken = regexp.MustCompile(`(?s)^--?([A-Za-z][^=]*)(?:=(.*))?$`)

// A -name or --name[=value] argument.
type flagArg struct {
	name     string
	value    string
	hasValue bool
}

// parseFlagArg reads one argument as a flag; ok is false for one that is not a flag.
func parseFlagArg(arg string) (f flagArg, ok bool) {
	m := flagToken.FindStringSubmatchIndex(arg)
	if m == nil {
		return f, false
	}
	f.name = arg[m[2]:m[3]]
	if m[4] >= 0 {
		f.value, f.hasValue = arg[m[4]:m[5]], true
	}
	return f, true
}

// settings reads args as gflags does: --name=value, a bool's --name (true) or --noname
// (false), or --name followed by its value as the next argument.
func (b binaryFlags) settings(args []string) []flagArg {
	var out []flagArg
	for i := 0; i < len(args); i++ {
		f, ok := parseFlagArg(args[i])
		if !ok {
			continue
		}
		if !f.hasValue {
			switch {
			case b[f.name].kind == "bool":
				f.value = "true"
			case strings.HasPrefix(f.name, "no") && b[f.name[2:]].kind == "bool":
				f.name, f.value = f.name[2:], "false"
			case i+1 < len(args):
				i++
				f.value = args[i]
			}
			f.hasValue = true
		}
		out = append(out, f)
	}
	return out
}

// flagNames returns the names of the flags among args.
func flagNames(args []string) []string {
	var names []string
	for _, arg := range args {
		if f, ok := parseFlagArg(arg); ok {
			names = append(names, f.name)
		}
	}
	return names
}

var commentedFlag = regexp.MustCompile(`^--[A-Za-z][^\s=]*(=|$)`)

// A flag file as gflags reads it (--flagfile): one --flag=value per line, # comments.
type flagFile struct {
	active    []string // the --flag lines
	commented []string // `# --flag=...` lines: suggestions to uncomment, so checked as well
	malformed []string // anything else: gflags would read it as a list of program names
}

func parseFlagFile(text string) flagFile {
	var f flagFile
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			if rest := strings.TrimSpace(strings.TrimLeft(line, "#")); commentedFlag.MatchString(rest) {
				f.commented = append(f.commented, rest)
			}
		case strings.HasPrefix(line, "-"):
			f.active = append(f.active, line)
		default:
			f.malformed = append(f.malformed, line)
		}
	}
	return f
}

// splitAddress returns the host and port of `host:port` or `[v6]:port`; port is -1 for
// anything else (`unix:/path`, a missing port).
func splitAddress(value string) (host string, port int) {
	if strings.HasPrefix(value, "unix:") {
		return value, -1
	}
	host, p, err := net.SplitHostPort(value)
	if err != nil {
		return value, -1
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return host, -1
	}
	return host, n
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isFalse says whether a bool flag's value is false as gflags reads it.
func isFalse(value string) bool {
	v, err := strconv.ParseBool(value)
	return value == "" || (err == nil && !v)
}

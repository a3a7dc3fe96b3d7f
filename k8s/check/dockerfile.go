package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A Dockerfile instruction: its keyword in capitals and its arguments, continuation lines joined.
type instruction struct{ keyword, args string }

// runtimeStage returns the instructions of a Dockerfile's last stage (the image that ships),
// comments dropped.
func runtimeStage(text string) []instruction {
	var stage []instruction
	pending := ""
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" && pending == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		keyword, args := line, ""
		if i := strings.IndexFunc(line, unicode.IsSpace); i >= 0 {
			keyword, args = line[:i], line[i:]
		}
		keyword = strings.ToUpper(keyword)
		if keyword == "FROM" {
			stage = nil
		}
		stage = append(stage, instruction{keyword, strings.TrimSpace(args)})
	}
	return stage
}

func argsOf(stage []instruction, keyword string) []string {
	var out []string
	for _, in := range stage {
		if in.keyword == keyword {
			out = append(out, in.args)
		}
	}
	return out
}

// checkDockerfileExpose: the image exposes exactly the health and metrics ports the manifests
// use.
func checkDockerfileExpose(stage []instruction, ports map[int]bool) error {
	if len(ports) == 0 {
		return errors.New("no sidecar container with --health_listen/--metrics_listen ports was checked")
	}
	exposed := map[int]bool{}
	for _, args := range argsOf(stage, "EXPOSE") {
		for _, p := range strings.Fields(args) {
			n, err := strconv.Atoi(strings.Split(p, "/")[0])
			if err != nil {
				return fmt.Errorf("EXPOSE %s: not a port", p)
			}
			exposed[n] = true
		}
	}
	if !maps.Equal(exposed, ports) {
		return fmt.Errorf("EXPOSE %v, but the manifests use ports %v", slices.Sorted(maps.Keys(exposed)), slices.Sorted(maps.Keys(ports)))
	}
	return nil
}

// checkDockerfileUser: the image runs as the manifests' runAsUser, by number (runAsNonRoot
// needs one), and its entry point is the sidecar.
func checkDockerfileUser(stage []instruction) error {
	users := argsOf(stage, "USER")
	if len(users) == 0 {
		return errors.New("the runtime stage sets no USER")
	}
	user := users[len(users)-1]
	uid, err := strconv.Atoi(strings.Split(user, ":")[0])
	switch {
	case err != nil:
		return fmt.Errorf("USER %s is not numeric: runAsNonRoot needs a numeric user", user)
	case uid != runAsUser:
		return fmt.Errorf("USER %d differs from the manifests' runAsUser %d", uid, runAsUser)
	}
	entry := argsOf(stage, "ENTRYPOINT")
	if len(entry) == 0 || !strings.Contains(entry[len(entry)-1], "kafka_sidecar") ||
		strings.Contains(entry[len(entry)-1], "kafka_sidecar_cli") {
		return fmt.Errorf("ENTRYPOINT is not the sidecar: %q", entry)
	}
	return nil
}

// aptPackages are the packages the stage's RUN lines `apt-get install`.
func aptPackages(stage []instruction) map[string]bool {
	packages := map[string]bool{}
	for _, args := range argsOf(stage, "RUN") {
		for _, command := range shellSeparator.Split(args, -1) {
			words := strings.Fields(command)
			i := slices.Index(words, "install")
			if i < 0 || !slices.Contains(words, "apt-get") {
				continue
			}
			for _, w := range words[i+1:] {
				if !strings.HasPrefix(w, "-") {
					packages[w] = true
				}
			}
		}
	}
	return packages
}

var (
	shellSeparator = regexp.MustCompile(`&&|;|\|\|`)
	// ldd's `libfoo.so.1 => /path/libfoo.so.1 (0x...)`.
	lddLibrary = regexp.MustCompile(`(?m)^\s*(\S+) => (/\S+)`)
	// dpkg -S's `package[:arch][, package...]: /path`.
	dpkgOwner = regexp.MustCompile(`(?m)^([^:,\s]+)(?::[^:\s]+)?(?:, [^:]+)?: (/.*)$`)
	// Shared libraries of sanitizer builds (--config=asan): not part of a release image.
	sanitizerLib = regexp.MustCompile(`^lib(asan|ubsan|lsan|tsan|hwasan)\.so`)
)

// checkDockerfilePackages: the runtime stage installs the Debian package of every shared library
// the binary links (ldd, then dpkg -S), libc6 aside (debian:12-slim has it).
func checkDockerfilePackages(stage []instruction, binary string) error {
	for _, tool := range []string{"ldd", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: no %s, not a Debian machine", errSkip, tool)
		}
	}
	listed := aptPackages(stage)
	if len(listed) == 0 {
		return errors.New("the runtime stage installs no apt packages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ldd", binary).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ldd %s: %v: %.300s", binary, err, out)
	}
	// dpkg knows a library only by the path its package shipped; with usrmerge /lib is
	// /usr/lib: ask for each spelling, in one dpkg -S (it is slow to start).
	var libs []string // in ldd's order
	spellings := map[string][]string{}
	var all []string
	for _, m := range lddLibrary.FindAllStringSubmatch(string(out), -1) {
		if sanitizerLib.MatchString(m[1]) {
			continue
		}
		lib := m[2]
		if !strings.HasPrefix(lib, "/lib") && !strings.HasPrefix(lib, "/usr/lib") {
			return fmt.Errorf("%s comes from %s, not a system library", m[1], lib)
		}
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			real = lib
		}
		if _, seen := spellings[lib]; !seen {
			libs = append(libs, lib)
		}
		for _, path := range []string{lib, real} {
			unmerged := strings.TrimPrefix(path, "/usr") // /usr/lib/x -> /lib/x
			for _, s := range []string{path, unmerged, "/usr" + unmerged} {
				if !slices.Contains(spellings[lib], s) {
					spellings[lib] = append(spellings[lib], s)
					all = append(all, s)
				}
			}
		}
	}
	if len(libs) == 0 {
		return errors.New("ldd listed no libraries")
	}
	owned, _ := exec.CommandContext(ctx, "dpkg", append([]string{"-S"}, all...)...).Output()
	owners := map[string]string{}
	for _, m := range dpkgOwner.FindAllStringSubmatch(string(owned), -1) {
		owners[m[2]] = m[1]
	}
	missing := map[string][]string{}
	for _, lib := range libs {
		owner := ""
		for _, p := range spellings[lib] {
			if owner = owners[p]; owner != "" {
				break
			}
		}
		switch {
		case owner == "":
			return fmt.Errorf("no Debian package owns %s", lib)
		case !listed[owner] && owner != "libc6":
			missing[owner] = append(missing[owner], filepath.Base(lib))
		}
	}
	if len(missing) > 0 {
		var parts []string
		for _, pkg := range slices.Sorted(maps.Keys(missing)) {
			sort.Strings(missing[pkg])
			parts = append(parts, fmt.Sprintf("%s (%s)", pkg, strings.Join(missing[pkg], ", ")))
		}
		return fmt.Errorf("the runtime stage does not install %s", strings.Join(parts, "; "))
	}
	return nil
}

func readDockerfile(path string) ([]instruction, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return runtimeStage(string(text)), nil
}

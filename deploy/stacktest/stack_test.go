package stacktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const deployDir = ".."

// file is the part of a compose or stack file the rules look at.
type file struct {
	Services map[string]*service `yaml:"services"`
	Networks map[string]*network `yaml:"networks"`
	Volumes  map[string]any      `yaml:"volumes"`
	Secrets  map[string]*struct {
		File     string `yaml:"file"`
		External bool   `yaml:"external"`
		Name     string `yaml:"name"`
	} `yaml:"secrets"`
	Configs map[string]*struct {
		File string `yaml:"file"`
		Name string `yaml:"name"`
	} `yaml:"configs"`
}

type network struct {
	Driver     string            `yaml:"driver"`
	Internal   bool              `yaml:"internal"`
	DriverOpts map[string]string `yaml:"driver_opts"`
}

type service struct {
	Image       string   `yaml:"image"`
	User        string   `yaml:"user"`
	ReadOnly    bool     `yaml:"read_only"`
	CapDrop     []string `yaml:"cap_drop"`
	CapAdd      []string `yaml:"cap_add"`
	SecurityOpt []string `yaml:"security_opt"`
	Privileged  bool     `yaml:"privileged"`
	NetworkMode string   `yaml:"network_mode"`
	Pid         string   `yaml:"pid"`
	Ipc         string   `yaml:"ipc"`
	UsernsMode  string   `yaml:"userns_mode"`
	Devices     []string `yaml:"devices"`
	PidsLimit   int      `yaml:"pids_limit"`
	MemLimit    string   `yaml:"mem_limit"`
	Cpus        any      `yaml:"cpus"`
	Restart     string   `yaml:"restart"`
	Healthcheck *struct {
		Test    any  `yaml:"test"`
		Disable bool `yaml:"disable"`
	} `yaml:"healthcheck"`
	Logging *struct {
		Driver  string            `yaml:"driver"`
		Options map[string]string `yaml:"options"`
	} `yaml:"logging"`
	Environment any   `yaml:"environment"`
	Networks    any   `yaml:"networks"`
	Ports       []any `yaml:"ports"`
	Volumes     []any `yaml:"volumes"`
	Secrets     []any `yaml:"secrets"`
	Configs     []any `yaml:"configs"`
	Deploy      *struct {
		Mode         string `yaml:"mode"`
		Replicas     *int   `yaml:"replicas"`
		EndpointMode string `yaml:"endpoint_mode"`
		Resources    struct {
			Limits struct {
				Cpus   string `yaml:"cpus"`
				Memory string `yaml:"memory"`
				Pids   int    `yaml:"pids"`
			} `yaml:"limits"`
		} `yaml:"resources"`
		RestartPolicy *struct {
			Condition string `yaml:"condition"`
		} `yaml:"restart_policy"`
		UpdateConfig *struct {
			Parallelism *int   `yaml:"parallelism"`
			Order       string `yaml:"order"`
			Delay       string `yaml:"delay"`
		} `yaml:"update_config"`
	} `yaml:"deploy"`
}

// interpolate resolves ${VAR}, ${VAR:-default} and ${VAR-default} to their
// defaults (the values a fresh checkout without .env gets) and $$ to $, as
// Compose does before parsing.
func interpolate(s string) string {
	re := regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		return re.FindStringSubmatch(m)[2]
	})
}

func readRaw(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(interpolate(string(data))), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// merge applies a Compose override: maps merge key by key, sequences are
// appended (ports, volumes, secrets ...), except those an override replaces.
func merge(base, over any, key string) any {
	bm, ok1 := base.(map[string]any)
	om, ok2 := over.(map[string]any)
	if ok1 && ok2 {
		out := map[string]any{}
		for k, v := range bm {
			out[k] = v
		}
		for k, v := range om {
			if b, ok := out[k]; ok {
				out[k] = merge(b, v, k)
			} else {
				out[k] = v
			}
		}
		return out
	}
	bl, ok1 := base.([]any)
	ol, ok2 := over.([]any)
	if ok1 && ok2 && !slices.Contains([]string{"command", "entrypoint", "test"}, key) {
		return append(append([]any{}, bl...), ol...)
	}
	return over
}

func decode(t *testing.T, raw map[string]any) *file {
	t.Helper()
	data, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var f file
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Services) == 0 {
		t.Fatal("no services")
	}
	return &f
}

func load(t *testing.T, names ...string) *file {
	t.Helper()
	var raw any = readRaw(t, names[0])
	for _, n := range names[1:] {
		raw = merge(raw, readRaw(t, n), "")
	}
	return decode(t, raw.(map[string]any))
}

// list returns a service's networks as names (list or map form).
func names(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
	case map[string]any:
		for k := range v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// env returns a service's environment as name -> value.
func env(v any) map[string]string {
	out := map[string]string{}
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			k, val, _ := strings.Cut(fmt.Sprint(x), "=")
			out[k] = val
		}
	case map[string]any:
		for k, x := range v {
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

var secretName = regexp.MustCompile(`(?i)pass|secret|token|key|credential|private`)

// A value that looks like a credential: long and random-looking, or a
// connection string with a password in it.
var (
	randomValue   = regexp.MustCompile(`^[A-Za-z0-9_\-+/=]{24,}$`)
	passwordInURL = regexp.MustCompile(`://[^/@:]+:[^/@]+@`)
)

// numericNonRoot: the user is "UID" or "UID:GID", both numbers, UID not 0.
func numericNonRoot(user string) error {
	u, g, hasGroup := strings.Cut(user, ":")
	uid, err := strconv.Atoi(u)
	if err != nil || uid == 0 {
		return fmt.Errorf("user %q: want a numeric non-root UID (UID:GID)", user)
	}
	if hasGroup {
		if gid, err := strconv.Atoi(g); err != nil || gid == 0 {
			return fmt.Errorf("user %q: want a numeric non-root GID", user)
		}
	}
	return nil
}

type mode int

const (
	composeMode mode = iota
	swarmMode
)

// checkServices applies the CIS Docker Benchmark items (sections 4 and 5)
// that a compose or stack file can show, to every service.
func checkServices(name string, f *file, m mode) (problems []string) {
	multi := map[string][]string{}
	for sn, s := range f.Services {
		fail := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s: service %s: %s", name, sn, fmt.Sprintf(format, args...)))
		}
		// 4.1: a non-root user.
		if err := numericNonRoot(s.User); err != nil {
			fail("%v", err)
		}
		// 5.12: read-only root file system.
		if !s.ReadOnly {
			fail("read_only: true is missing")
		}
		// 5.3: capabilities dropped, none added.
		if !slices.Contains(s.CapDrop, "ALL") {
			fail("cap_drop: [ALL] is missing")
		}
		if len(s.CapAdd) > 0 {
			fail("cap_add %v: no capability may be added", s.CapAdd)
		}
		// 5.25: no new privileges (setuid binaries cannot raise them).
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") && !slices.Contains(s.SecurityOpt, "no-new-privileges") {
			fail("security_opt: [no-new-privileges:true] is missing")
		}
		// 5.4, 5.17: not privileged, no host devices.
		if s.Privileged {
			fail("privileged")
		}
		if len(s.Devices) > 0 {
			fail("devices %v", s.Devices)
		}
		// 5.9, 5.15, 5.16, 5.30: no host network, PID, IPC or user namespaces.
		for k, v := range map[string]string{"network_mode": s.NetworkMode, "pid": s.Pid, "ipc": s.Ipc, "userns_mode": s.UsernsMode} {
			if v == "host" {
				fail("%s: host", k)
			}
		}
		// 5.10, 5.11, 5.28: memory, CPU and pids limits.
		lim := struct{ cpus, memory string }{}
		pids := s.PidsLimit
		if s.Deploy != nil {
			lim.cpus, lim.memory = s.Deploy.Resources.Limits.Cpus, s.Deploy.Resources.Limits.Memory
			if s.Deploy.Resources.Limits.Pids > 0 {
				pids = s.Deploy.Resources.Limits.Pids
			}
		}
		if lim.memory == "" && s.MemLimit == "" {
			fail("no memory limit (mem_limit; swarm: deploy.resources.limits.memory)")
		}
		if lim.cpus == "" && s.Cpus == nil {
			fail("no CPU limit (cpus; swarm: deploy.resources.limits.cpus)")
		}
		if pids <= 0 {
			if m == swarmMode {
				fail("no pids limit (deploy.resources.limits.pids)")
			} else {
				fail("no pids limit (pids_limit)")
			}
		}
		// 4.6, 5.27: a health check.
		if s.Healthcheck == nil || s.Healthcheck.Disable || s.Healthcheck.Test == nil || fmt.Sprint(s.Healthcheck.Test) == "[NONE]" {
			fail("no healthcheck")
		}
		// 5.14: a restart policy (Compose: restart; swarm: deploy.restart_policy).
		switch m {
		case composeMode:
			if !slices.Contains([]string{"always", "unless-stopped", "on-failure"}, s.Restart) {
				fail("restart %q: want unless-stopped, always or on-failure", s.Restart)
			}
		case swarmMode:
			if s.Deploy == nil || s.Deploy.RestartPolicy == nil || s.Deploy.RestartPolicy.Condition == "" || s.Deploy.RestartPolicy.Condition == "none" {
				fail("no deploy.restart_policy")
			}
			if s.Deploy == nil || s.Deploy.UpdateConfig == nil || s.Deploy.UpdateConfig.Parallelism == nil {
				fail("no deploy.update_config (rolling updates)")
			}
		}
		// Logs rotated: json-file with max-size and max-file.
		if s.Logging == nil || s.Logging.Driver != "json-file" || s.Logging.Options["max-size"] == "" || s.Logging.Options["max-file"] == "" {
			fail("logging: want json-file with max-size and max-file")
		}
		// 4.10: no secrets in the environment: secret-like names only for
		// paths (..._FILE, /run/secrets/...), and no credential-like values.
		for k, v := range env(s.Environment) {
			if secretName.MatchString(k) && !strings.HasSuffix(k, "_FILE") && !strings.HasPrefix(v, "/") {
				fail("environment %s: secrets go in files (/run/secrets), not the environment", k)
			}
			if (randomValue.MatchString(v) && !strings.HasPrefix(v, "/")) || passwordInURL.MatchString(v) {
				fail("environment %s: the value looks like a credential", k)
			}
		}
		// 5.31: never the Docker socket; 5.5: bind mounts only of files
		// in deploy/ and examples/, read-only.
		for _, v := range s.Volumes {
			src, target, ro := volumeSpec(v)
			if strings.Contains(src, "docker.sock") || strings.Contains(target, "docker.sock") {
				fail("mounts the Docker socket")
			}
			if strings.HasPrefix(src, "/") {
				fail("bind mount of the host path %s", src)
			}
			if strings.HasPrefix(src, ".") && !ro {
				fail("bind mount %s:%s is not read-only", src, target)
			}
		}
		// Secrets are declared at the top level.
		for _, sec := range s.Secrets {
			n := fmt.Sprint(sec)
			if mm, ok := sec.(map[string]any); ok {
				n = fmt.Sprint(mm["source"])
			}
			if _, ok := f.Secrets[n]; !ok {
				fail("secret %s is not declared", n)
			}
		}
		// Networks: count them, network_mode is only another service's.
		nets := names(s.Networks)
		if s.NetworkMode != "" {
			if len(nets) > 0 {
				fail("network_mode and networks together")
			}
			if s.NetworkMode != "none" && !strings.HasPrefix(s.NetworkMode, "service:") {
				fail("network_mode %q: want none or service:NAME", s.NetworkMode)
			}
		}
		if len(nets) > 1 {
			multi[sn] = nets
		}
		// 5.13: published ports bound to loopback (Compose); swarm cannot
		// bind an address, so there only host-mode ports on the edge.
		for _, p := range s.Ports {
			switch m {
			case composeMode:
				ps := fmt.Sprint(p)
				if mm, ok := p.(map[string]any); ok {
					ps = fmt.Sprint(mm["host_ip"]) + ":"
				}
				if !strings.HasPrefix(ps, "127.0.0.1:") {
					fail("port %v is not bound to 127.0.0.1", p)
				}
			case swarmMode:
				mm, ok := p.(map[string]any)
				if !ok || mm["mode"] != "host" {
					fail("port %v: want the long syntax with mode: host", p)
				}
			}
		}
	}
	// Only the edge joins more than one network, and the swarm CA the two
	// tiers whose sidecars enroll with it (it serves enrollment only).
	for sn, nets := range multi {
		if sn == "ca" && m == swarmMode && slices.Equal(nets, []string{"backend", "frontend"}) {
			continue
		}
		if sn != "edge" {
			problems = append(problems, fmt.Sprintf("%s: service %s is on %d networks %v; only the edge may join more than one", name, sn, len(nets), nets))
		}
	}
	// Every network but public is internal (no route out, none between them).
	for nn, n := range f.Networks {
		if nn == "public" {
			continue
		}
		if n == nil || !n.Internal {
			problems = append(problems, fmt.Sprintf("%s: network %s is not internal: true", name, nn))
		}
		if m == swarmMode && (n == nil || n.Driver != "overlay" || n.DriverOpts["encrypted"] == "") {
			problems = append(problems, fmt.Sprintf("%s: network %s: want an encrypted overlay (driver: overlay, driver_opts: {encrypted: \"true\"})", name, nn))
		}
	}
	return problems
}

// volumeSpec returns a volume entry's source, target and whether it is read-only.
func volumeSpec(v any) (src, target string, ro bool) {
	switch v := v.(type) {
	case string:
		parts := strings.Split(v, ":")
		if len(parts) == 1 {
			return "", parts[0], false
		}
		src, target = parts[0], parts[1]
		return src, target, len(parts) > 2 && strings.Contains(parts[2], "ro")
	case map[string]any:
		ro, _ = v["read_only"].(bool)
		return fmt.Sprint(v["source"]), fmt.Sprint(v["target"]), ro
	}
	return "", "", false
}

func TestComposeHardening(t *testing.T) {
	f := load(t, "compose.yaml")
	report(t, checkServices("compose.yaml", f, composeMode))
	checkLayout(t, "compose.yaml", f)
	// Secrets are files, generated by secrets.sh, never in the file itself.
	for n, s := range f.Secrets {
		if s == nil || s.File == "" {
			t.Errorf("compose.yaml: secret %s: want a file", n)
		}
	}
}

func TestComposeDevHardening(t *testing.T) {
	f := load(t, "compose.yaml", "compose.dev.yaml")
	report(t, checkServices("compose.yaml + compose.dev.yaml", f, composeMode))
	checkLayout(t, "compose.yaml + compose.dev.yaml", f)
}

func TestStackHardening(t *testing.T) {
	f := load(t, "stack.yaml")
	report(t, checkServices("stack.yaml", f, swarmMode))
	for n, s := range f.Secrets {
		if s == nil || (s.Name == "" && !s.External) {
			t.Errorf("stack.yaml: secret %s: want a versioned name (name: %s_${..._VERSION})", n, n)
		}
	}
	for sn, s := range f.Services {
		if s.Deploy == nil || (s.Deploy.Replicas == nil && s.Deploy.Mode != "global") {
			t.Errorf("stack.yaml: service %s: no deploy.replicas", sn)
		}
		if strings.HasPrefix(s.NetworkMode, "service:") {
			t.Errorf("stack.yaml: service %s: swarm has no network_mode service:", sn)
		}
	}
}

// checkLayout: the network layout the README promises.
func checkLayout(t *testing.T, name string, f *file) {
	t.Helper()
	want := map[string][]string{
		"edge":        {"backend", "data", "frontend", "monitoring", "public"},
		"web":         {"frontend"}, // drawbridge itself serves the files, with mutual TLS from the edge
		"api-sidecar": {"backend"},
		"db":          {"data"},
		"prometheus":  {"monitoring"},
	}
	for sn, nets := range want {
		s := f.Services[sn]
		if s == nil {
			t.Errorf("%s: no service %s", name, sn)
			continue
		}
		if got := names(s.Networks); !slices.Equal(got, nets) {
			t.Errorf("%s: service %s is on %v, want %v", name, sn, got, nets)
		}
	}
	for app, sidecar := range map[string]string{"api": "api-sidecar"} {
		if s := f.Services[app]; s == nil || s.NetworkMode != "service:"+sidecar {
			t.Errorf("%s: service %s must share its sidecar's network namespace (network_mode: service:%s)", name, app, sidecar)
		}
	}
	if p := f.Services["edge"].Ports; len(p) != 1 || !strings.HasSuffix(fmt.Sprint(p[0]), ":443:8443") {
		t.Errorf("%s: edge ports %v: want 127.0.0.1:443:8443", name, p)
	}
	for _, v := range []string{"pki", "db-data", "ca-backups", "db-backups"} {
		if _, ok := f.Volumes[v]; !ok {
			t.Errorf("%s: no named volume %s", name, v)
		}
	}
}

// TestInterpolate: the defaults the checks see.
func TestInterpolate(t *testing.T) {
	for in, want := range map[string]string{
		"${EDGE_BIND:-127.0.0.1}:${EDGE_HTTPS_PORT:-443}:8443": "127.0.0.1:443:8443",
		"a $$b ${X}":    "a $b ",
		"${Y-dflt}/x":   "dflt/x",
		"no variables":  "no variables",
		"${Z:-}-suffix": "-suffix",
	} {
		if got := interpolate(in); got != want {
			t.Errorf("interpolate(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChecksCatchRegressions: each rule fails on a service that breaks it.
func TestChecksCatchRegressions(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{
			"user": "65532:65532", "read_only": true, "cap_drop": []any{"ALL"},
			"security_opt": []any{"no-new-privileges:true"}, "restart": "unless-stopped", "pids_limit": 64,
			"healthcheck": map[string]any{"test": []any{"CMD", "true"}},
			"logging":     map[string]any{"driver": "json-file", "options": map[string]any{"max-size": "10m", "max-file": "3"}},
			"cpus":        0.5, "mem_limit": "64m",
		}
	}
	for name, breakIt := range map[string]func(s map[string]any){
		"root user":          func(s map[string]any) { s["user"] = "0:0" },
		"named user":         func(s map[string]any) { s["user"] = "app" },
		"writable root":      func(s map[string]any) { delete(s, "read_only") },
		"capabilities kept":  func(s map[string]any) { s["cap_drop"] = []any{"NET_RAW"} },
		"capability added":   func(s map[string]any) { s["cap_add"] = []any{"NET_ADMIN"} },
		"new privileges":     func(s map[string]any) { delete(s, "security_opt") },
		"privileged":         func(s map[string]any) { s["privileged"] = true },
		"host network":       func(s map[string]any) { s["network_mode"] = "host" },
		"host pid":           func(s map[string]any) { s["pid"] = "host" },
		"no pids limit":      func(s map[string]any) { delete(s, "pids_limit") },
		"no memory limit":    func(s map[string]any) { delete(s, "mem_limit") },
		"no healthcheck":     func(s map[string]any) { delete(s, "healthcheck") },
		"no restart":         func(s map[string]any) { delete(s, "restart") },
		"unrotated logs":     func(s map[string]any) { s["logging"] = map[string]any{"driver": "json-file"} },
		"password in env":    func(s map[string]any) { s["environment"] = map[string]any{"DB_PASSWORD": "hunter2"} },
		"credential in env":  func(s map[string]any) { s["environment"] = []any{"URL=postgres://u:pw@db/x"} },
		"docker socket":      func(s map[string]any) { s["volumes"] = []any{"/var/run/docker.sock:/var/run/docker.sock"} },
		"writable bind":      func(s map[string]any) { s["volumes"] = []any{"./conf:/etc/conf"} },
		"public port":        func(s map[string]any) { s["ports"] = []any{"443:8443"} },
		"two networks":       func(s map[string]any) { s["networks"] = []any{"a", "b"} },
		"undeclared secret":  func(s map[string]any) { s["secrets"] = []any{"nope"} },
		"service and nets":   func(s map[string]any) { s["network_mode"] = "service:x"; s["networks"] = []any{"a"} },
		"disabled health":    func(s map[string]any) { s["healthcheck"] = map[string]any{"disable": true} },
		"healthcheck NONE":   func(s map[string]any) { s["healthcheck"] = map[string]any{"test": []any{"NONE"}} },
		"host path mount":    func(s map[string]any) { s["volumes"] = []any{"/etc:/host-etc:ro"} },
		"devices":            func(s map[string]any) { s["devices"] = []any{"/dev/kmsg"} },
		"ipc host":           func(s map[string]any) { s["ipc"] = "host" },
		"no cpu limit":       func(s map[string]any) { delete(s, "cpus") },
		"restart policy no":  func(s map[string]any) { s["restart"] = "no" },
		"token in env":       func(s map[string]any) { s["environment"] = map[string]any{"ADMIN_TOKEN": "x"} },
		"userns host":        func(s map[string]any) { s["userns_mode"] = "host" },
		"other network mode": func(s map[string]any) { s["network_mode"] = "container:abc" },
	} {
		t.Run(name, func(t *testing.T) {
			s := good()
			breakIt(s)
			raw := map[string]any{
				"services": map[string]any{"svc": s},
				"networks": map[string]any{"a": map[string]any{"internal": true}, "b": map[string]any{"internal": true}},
			}
			if len(checkServices("test", decode(t, raw), composeMode)) == 0 {
				t.Error("the checks let it pass")
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		raw := map[string]any{"services": map[string]any{"svc": good()}}
		report(t, checkServices("test", decode(t, raw), composeMode))
	})
	t.Run("external network", func(t *testing.T) {
		raw := map[string]any{"services": map[string]any{"svc": good()}, "networks": map[string]any{"data": map[string]any{}}}
		if len(checkServices("test", decode(t, raw), composeMode)) == 0 {
			t.Error("a network that is not internal passed")
		}
	})
}

func report(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

// TestDrawbridgeConfigs: every drawbridge configuration the stacks mount is
// valid for `drawbridge validate` (and a sidecar's for `drawbridge sidecar`).
func TestDrawbridgeConfigs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(deployDir, "drawbridge", "*.yaml"))
	swarm, _ := filepath.Glob(filepath.Join(deployDir, "swarm", "*.yaml"))
	files = append(files, swarm...)
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	bin := filepath.Join(t.TempDir(), "drawbridge")
	build := exec.Command("go", "build", "-o", bin, "./cmd/drawbridge")
	build.Dir = filepath.Join(deployDir, "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, f := range files {
		out, err := exec.Command(bin, "validate", "--config", f).CombinedOutput()
		if err != nil {
			t.Errorf("drawbridge validate %s: %v\n%s", f, err, out)
		}
	}
}

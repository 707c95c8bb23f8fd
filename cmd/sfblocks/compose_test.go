package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/sfblocks/sfblocks/worker/deploy"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// repoRoot is where docker-compose.yml is, seen from this package.
const repoRoot = "../.."

// composeProject is docker-compose.yml as far as these tests read it.
type composeProject struct {
	Services map[string]composeService `yaml:"services"`
	Configs  map[string]struct {
		File    string `yaml:"file"`
		Content string `yaml:"content"`
	} `yaml:"configs"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Profiles  []string  `yaml:"profiles"`
	Command   []string  `yaml:"command"`
	DependsOn yaml.Node `yaml:"depends_on"` // a list of names, or a map by name
	Configs   []struct {
		Source string `yaml:"source"`
	} `yaml:"configs"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

// dependsOn lists the services s depends on, in either syntax.
func (s composeService) dependsOn() []string {
	var out []string
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		for _, n := range s.DependsOn.Content {
			out = append(out, n.Value)
		}
	case yaml.MappingNode:
		for i := 0; i < len(s.DependsOn.Content); i += 2 {
			out = append(out, s.DependsOn.Content[i].Value)
		}
	}
	return out
}

// active reports whether s runs in profile.
func (s composeService) active(profile string) bool {
	return len(s.Profiles) == 0 || slices.Contains(s.Profiles, profile)
}

func readCompose(t *testing.T) (raw []byte, p composeProject) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &p); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return raw, p
}

// withoutSim is the file as the README's "point the workers at a real
// org" leaves it: the sim service removed.
func withoutSim(t *testing.T, raw []byte) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	top := doc.Content[0]
	for i := 0; i < len(top.Content); i += 2 {
		if top.Content[i].Value != "services" {
			continue
		}
		svcs := top.Content[i+1]
		for j := 0; j < len(svcs.Content); j += 2 {
			if svcs.Content[j].Value == "sim" {
				svcs.Content = append(svcs.Content[:j], svcs.Content[j+2:]...)
				out, err := yaml.Marshal(&doc)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
		}
	}
	t.Fatal("docker-compose.yml has no sim service")
	return nil
}

// checkProject fails the test for each reference of profile's services
// that does not resolve: a dependency on a service that is missing or not
// in the profile, a config or named volume that is not declared, a config
// file that does not exist.
func checkProject(t *testing.T, p composeProject, profile string) {
	t.Helper()
	n := 0
	for name, s := range p.Services {
		if !s.active(profile) {
			continue
		}
		n++
		for _, dep := range s.dependsOn() {
			d, ok := p.Services[dep]
			switch {
			case !ok:
				t.Errorf("profile %s: service %s depends on %s, which is not defined", profile, name, dep)
			case !d.active(profile):
				t.Errorf("profile %s: service %s depends on %s, which is not in the profile", profile, name, dep)
			}
		}
		for _, c := range s.Configs {
			cfg, ok := p.Configs[c.Source]
			if !ok {
				t.Errorf("profile %s: service %s uses config %s, which is not declared", profile, name, c.Source)
				continue
			}
			if cfg.File != "" {
				if _, err := os.Stat(filepath.Join(repoRoot, cfg.File)); err != nil {
					t.Errorf("config %s: %v", c.Source, err)
				}
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				continue
			}
			if _, ok := p.Volumes[src]; !ok {
				t.Errorf("profile %s: service %s uses volume %s, which is not declared", profile, name, src)
			}
		}
		if s.Restart == "" {
			t.Errorf("profile %s: service %s has no restart policy", profile, name)
		}
	}
	if n == 0 {
		t.Errorf("profile %s runs no service", profile)
	}
}

// TestComposeFile: docker-compose.yml is a valid project in both profiles,
// as it is and with the sim service removed (as the README says to for a
// real org); the cluster profile is three NATS nodes and three R3 workers,
// each given every node, its own first; and the nodes' configuration
// parses as nats-server reads it, with the roles it includes. With docker
// on the PATH, `docker compose config` validates the same files.
func TestComposeFile(t *testing.T) {
	raw, p := readCompose(t)
	env, err := os.ReadFile(filepath.Join(repoRoot, ".env"))
	if err != nil || !strings.Contains(string(env), "COMPOSE_PROFILES=single") {
		t.Errorf(".env: %q, %v; want COMPOSE_PROFILES=single, so that `docker compose up` runs one profile", env, err)
	}
	var bare composeProject
	if err := yaml.Unmarshal(withoutSim(t, raw), &bare); err != nil {
		t.Fatal(err)
	}
	for _, profile := range []string{"single", "cluster"} {
		t.Run(profile, func(t *testing.T) { checkProject(t, p, profile) })
		t.Run(profile+" without sim", func(t *testing.T) { checkProject(t, bare, profile) })
	}

	t.Run("cluster workers", func(t *testing.T) {
		nodes := []string{"nats-1", "nats-2", "nats-3"}
		for i := range 3 {
			w := p.Services["worker-"+string(rune('1'+i))]
			order := append(append([]string(nil), nodes[i:]...), nodes[:i]...)
			var urls []string
			for _, n := range order {
				urls = append(urls, "nats://"+n+":4222")
			}
			want := []string{"--nats-url=" + strings.Join(urls, ","), "--nats-url-in-order", "--replicas=3"}
			for _, arg := range want {
				if !slices.Contains(w.Command, arg) {
					t.Errorf("worker-%d: command %v lacks %s", i+1, w.Command, arg)
				}
			}
			if w.Environment["SFBLOCKS_NATS_USER"] != deploy.WorkerUser || !slices.Contains(w.Healthcheck.Test, "health") {
				t.Errorf("worker-%d: user %q, health check %v", i+1, w.Environment["SFBLOCKS_NATS_USER"], w.Healthcheck.Test)
			}
		}
	})

	t.Run("cluster nodes' configuration", func(t *testing.T) {
		cfg, ok := p.Configs["nats-cluster"]
		if !ok {
			t.Fatal("no nats-cluster config")
		}
		dir := t.TempDir()
		roles, err := os.ReadFile(workertest.RolesConfigFile(t))
		if err != nil {
			t.Fatal(err)
		}
		// Compose writes $$ as $.
		conf := strings.ReplaceAll(cfg.Content, "$$", "$")
		if err := os.WriteFile(filepath.Join(dir, "nats-roles.conf"), roles, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cluster.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		workertest.RolePassword(deploy.WorkerUser) // the roles' passwords in the environment
		t.Setenv("SERVER_NAME", "n2")
		o, err := server.ProcessConfigFile(filepath.Join(dir, "cluster.conf"))
		if err != nil {
			t.Fatalf("nats-server reads the nodes' configuration: %v", err)
		}
		var users []string
		for _, u := range o.Users {
			users = append(users, u.Username)
		}
		var routes []string
		for _, r := range o.Routes {
			routes = append(routes, r.Host)
		}
		if o.ServerName != "n2" || o.Cluster.Name != "sfblocks" || o.Cluster.Port != 6222 || !o.JetStream || o.StoreDir == "" ||
			o.Port != 4222 || o.HTTPPort != 8222 || o.LameDuckDuration != 30*time.Second || !slices.Contains(users, deploy.WorkerUser) ||
			!slices.Equal(routes, []string{"nats-1:6222", "nats-2:6222", "nats-3:6222"}) {
			t.Errorf("nodes' configuration: server_name %q, cluster %q port %d, routes %v, JetStream %v in %q, port %d, http %d, lame duck %v, users %v",
				o.ServerName, o.Cluster.Name, o.Cluster.Port, routes, o.JetStream, o.StoreDir, o.Port, o.HTTPPort, o.LameDuckDuration, users)
		}
	})

	t.Run("docker compose config", func(t *testing.T) {
		if _, err := exec.LookPath("docker"); err != nil {
			t.Skip("no docker on the PATH")
		}
		if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
			t.Skipf("no docker compose: %v %s", err, out)
		}
		bareFile := filepath.Join(t.TempDir(), "docker-compose.yml")
		if err := os.WriteFile(bareFile, withoutSim(t, raw), 0o600); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "SFBLOCKS_TOKEN_KEY=x")
		for _, r := range []string{"WORKER", "OPERATOR", "TENANT_A", "TENANT_B"} {
			env = append(env, "SFBLOCKS_NATS_"+r+"_PASSWORD=x")
		}
		for _, file := range []string{filepath.Join(repoRoot, "docker-compose.yml"), bareFile} {
			for _, profile := range []string{"single", "cluster"} {
				cmd := exec.Command("docker", "compose", "--project-directory", repoRoot, "-f", file, "--profile", profile, "config", "-q")
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("docker compose -f %s --profile %s config: %v\n%s", file, profile, err, out)
				}
			}
		}
	})
}

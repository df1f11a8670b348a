// Command harness is the Go anchor of the bench's "warm" section: the
// floor for any BuildKit client. It holds one buildkit client.Client (the
// pinned tag's own client package) for its whole life and runs cached
// Dockerfile builds on it when asked, as a long-lived Go service would.
//
// scripts/bench.ts drives it and scripts/bench-warm.ts (bk-build's side)
// over the same line protocol, so both are measured the same way:
//
//	stdin:  "seq N"   run N builds one after another
//	        "conc N"  start N builds at once and wait for all of them
//	stdout: one JSON object per command:
//	        {"op":"seq","ms":[...],"wallMs":...,"notCached":0}
//	        ms: each build's time from the Solve call to its last status
//	        update; wallMs: the whole command; notCached: builds whose
//	        RUN step was not answered from the cache.
//	EOF on stdin: close the client and exit.
//
// Every build is the same request bk-build's client.build() sends for
// { context, dockerfile, secrets: { tok } }: the dockerfile.v0 frontend,
// the context and the Dockerfile's directory as local mounts, no exporter,
// and a session that serves the files, the secret and registry
// credentials from the Docker config (the same services bk-build's
// session offers).
//
// The secret's value comes from BK_BENCH_SECRET and is never printed.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/tonistiigi/fsutil"
)

// result is what one build reports back to the command that ran it.
type result struct {
	ms     float64
	cached bool
	err    error
}

// reply is the JSON line written for each command.
type reply struct {
	Op        string    `json:"op"`
	N         int       `json:"n"`
	Ms        []float64 `json:"ms"`
	WallMs    float64   `json:"wallMs"`
	NotCached int       `json:"notCached"`
	Error     string    `json:"error,omitempty"`
}

func main() {
	addr := flag.String("addr", os.Getenv("BUILDKIT_HOST"), "buildkitd address")
	contextDir := flag.String("context", "", "build context directory")
	dockerfileDir := flag.String("dockerfile", "", "directory holding the Dockerfile (default: the context)")
	flag.Parse()
	if *addr == "" || *contextDir == "" {
		fail("usage: harness -addr ADDRESS -context DIR [-dockerfile DIR], secret in BK_BENCH_SECRET")
	}
	if *dockerfileDir == "" {
		*dockerfileDir = *contextDir
	}
	secret, ok := os.LookupEnv("BK_BENCH_SECRET")
	if !ok {
		fail("BK_BENCH_SECRET is not set")
	}
	// Nothing below needs it in the environment any more.
	os.Unsetenv("BK_BENCH_SECRET")

	ctx := context.Background()
	// One client, one gRPC connection, for every build of the run.
	c, err := client.New(ctx, *addr)
	if err != nil {
		fail("connect: %v", err)
	}
	defer c.Close()

	abs, err := filepath.Abs(*contextDir)
	if err != nil {
		fail("%v", err)
	}
	b := &builder{
		c:             c,
		contextDir:    abs,
		dockerfileDir: *dockerfileDir,
		secrets:       secretsprovider.FromMap(map[string][]byte{"tok": []byte(secret)}),
		// One credentials provider for the client's life: it caches what it
		// read from the Docker config, as a service holding a client would.
		auth: authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			ConfigFile: config.LoadDefaultConfigFile(os.Stderr),
		}),
		// bk-build keys the daemon's copy of a context directory by a hash
		// of its path (so a rebuild sends only what changed); do the same.
		sharedKey: sharedKey(abs),
	}

	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		op, n, err := parse(in.Text())
		if err != nil {
			fail("%v", err)
		}
		if err := out.Encode(b.run(ctx, op, n)); err != nil {
			fail("write: %v", err)
		}
	}
}

type builder struct {
	c                         *client.Client
	contextDir, dockerfileDir string
	secrets, auth             session.Attachable
	sharedKey                 string
}

// run carries out one command: n builds, one after another ("seq") or all
// at once ("conc").
func (b *builder) run(ctx context.Context, op string, n int) reply {
	r := reply{Op: op, N: n, Ms: make([]float64, n)}
	results := make([]result, n)
	start := time.Now()
	if op == "seq" {
		for i := range results {
			results[i] = b.build(ctx)
		}
	} else {
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = b.build(ctx)
			}()
		}
		wg.Wait()
	}
	r.WallMs = msSince(start)
	for i, res := range results {
		if res.err != nil && r.Error == "" {
			r.Error = res.err.Error()
		}
		if !res.cached {
			r.NotCached++
		}
		r.Ms[i] = res.ms
	}
	return r
}

// build runs one Solve and reads its status channel to the end, as any
// client showing progress must (buildkit's Solve closes the channel when
// the build and its status stream are done).
func (b *builder) build(ctx context.Context) result {
	start := time.Now()
	// The local mounts are made per build, as buildctl and buildx do.
	contextFS, err := fsutil.NewFS(b.contextDir)
	if err != nil {
		return result{err: err}
	}
	dockerfileFS, err := fsutil.NewFS(b.dockerfileDir)
	if err != nil {
		return result{err: err}
	}
	status := make(chan *client.SolveStatus)
	cached := make(chan bool, 1)
	go func() {
		// The RUN step's last word on it: cached, or not.
		var was bool
		for s := range status {
			for _, v := range s.Vertexes {
				if strings.Contains(v.Name, "RUN ") && v.Completed != nil {
					was = v.Cached
				}
			}
		}
		cached <- was
	}()
	_, err = b.c.Solve(ctx, nil, client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: map[string]string{"filename": "Dockerfile"},
		LocalMounts:   map[string]fsutil.FS{"context": contextFS, "dockerfile": dockerfileFS},
		SharedKey:     b.sharedKey,
		Session:       []session.Attachable{b.secrets, b.auth},
	}, status)
	was := <-cached
	return result{ms: msSince(start), cached: was, err: err}
}

func parse(line string) (string, int, error) {
	f := strings.Fields(line)
	if len(f) == 2 && (f[0] == "seq" || f[0] == "conc") {
		if n, err := strconv.Atoi(f[1]); err == nil && n > 0 {
			return f[0], n, nil
		}
	}
	return "", 0, fmt.Errorf("bad command %q: want \"seq N\" or \"conc N\"", line)
}

func sharedKey(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:])[:32]
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "harness: "+format+"\n", args...)
	os.Exit(1)
}

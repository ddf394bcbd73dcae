package backup

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

func TestFileName(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 4, 5, 600, time.FixedZone("CET", 3600))
	if got, want := FileName(at), "drawbridge-20261127T020405Z.backup"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	if !archiveName.MatchString(FileName(at)) {
		t.Error("FileName does not match what prune removes")
	}
}

// TestScheduledKeepsNewest drives Run with an injected clock and timer:
// each tick is one run; Keep newest archives stay, a failed run is logged
// and audited, removes nothing and does not stop the schedule; other files
// in the directory are left alone; cancelling ends Run with nil.
func TestScheduledKeepsNewest(t *testing.T) {
	st := stateOnDisk(t)
	dir := filepath.Join(t.TempDir(), "backups")
	writeFile(t, filepath.Join(dir, "postgres-20261127.dump"), "pg_dump output")
	writeFile(t, filepath.Join(dir, tempPrefix+"young"+tempSuffix), "another backup being written")
	stale := filepath.Join(dir, tempPrefix+"crashed"+tempSuffix)
	writeFile(t, stale, "left by a crash")
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	clock := drawtest.ClockAt(time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC))
	ticks := make(chan time.Time)
	waiting := make(chan time.Duration)
	var logs drawtest.Buffer
	var mu sync.Mutex
	var events []AuditEvent
	deps := Deps{
		Logger: jsonLogger(&logs),
		Now:    clock.Now,
		After: func(d time.Duration) <-chan time.Time {
			waiting <- d // a run has finished
			return ticks
		},
		Audit: func(_ context.Context, e AuditEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		},
	}
	const keep = 2
	b := testBacker(t, st, Config{Dir: dir, Every: 24 * time.Hour, Keep: keep}, deps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	var made []string // archive names of the successful runs
	const runs, failing = 5, 2
	for i := range runs {
		if d := <-waiting; d != 24*time.Hour {
			t.Fatalf("run %d: waited %v, want 24h", i, d)
		}
		if i != failing {
			made = append(made, FileName(clock.Now()))
		}
		want := made[max(0, len(made)-keep):]
		if diff := cmp.Diff(want, archivesIn(t, dir)); diff != "" {
			t.Fatalf("after run %d (-want +got):\n%s", i, diff)
		}
		switch i { // the next run
		case failing - 1:
			if err := os.Rename(st.cfg.PassphraseFile, st.cfg.PassphraseFile+".away"); err != nil {
				t.Fatal(err)
			}
		case failing:
			if err := os.Rename(st.cfg.PassphraseFile+".away", st.cfg.PassphraseFile); err != nil {
				t.Fatal(err)
			}
		}
		if i < runs-1 {
			clock.Advance(24 * time.Hour)
			ticks <- clock.Now()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancel, want nil", err)
	}

	for _, name := range []string{"postgres-20261127.dump", tempPrefix + "young" + tempSuffix} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"scheduled backup failed; the next run is on schedule"`, `"msg":"backup pruned"`, `"msg":"scheduled backups stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, testPassphrase) {
		t.Error("the passphrase is in the logs")
	}
	mu.Lock()
	defer mu.Unlock()
	var results []string
	for _, e := range events {
		results = append(results, e.Result)
	}
	want := []string{"success", "success", "failure", "success", "success"}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("audited results (-want +got):\n%s", diff)
	}
}

func archivesIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if archiveName.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// TestRunStopsDuringAWait: cancelling while Run waits for the next tick
// returns at once.
func TestRunStopsDuringAWait(t *testing.T) {
	st := stateOnDisk(t)
	waiting := make(chan struct{}, 1)
	deps := Deps{After: func(time.Duration) <-chan time.Time {
		waiting <- struct{}{}
		return nil // never fires
	}}
	b := testBacker(t, st, Config{Dir: t.TempDir()}, deps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-waiting
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Every: time.Second, Keep: -1}
	c.Defaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"state_dir: required", "passphrase_file: required", "every: must be >= 1m", "keep: must be >= 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// watchCoalesce is how long after the first relevant event the files are
// read: an editor's write-and-rename or a kubelet's symlink swap is done
// by then, and a burst of events costs one reload.
const watchCoalesce = 200 * time.Millisecond

// maxSymlinkHops bounds symlink resolution, as the kernel does (ELOOP).
const maxSymlinkHops = 40

// watchFiles calls changed when the content of any file that files names
// changes (files is asked again after every change, so a reload may
// switch the TLS certificate paths).
//
// It watches directories, not files, so it survives editors that write a
// new file and rename it over the old one, and Kubernetes ConfigMap and
// Secret volumes, where gateway.yaml is a symlink to ..data/gateway.yaml
// and ..data is a symlink that the kubelet swaps atomically. Every symlink
// met while resolving a path is watched in its directory, also when the
// config path itself is a symlink into another directory. Events only
// trigger a read; changed is called only when a file's bytes differ from
// the last read (by SHA-256), so a rewrite with the same content, or a
// busy audit log in the same directory, reloads nothing.
//
// The goroutine ends when ctx ends or stop is called; stop waits for it.
func watchFiles(ctx context.Context, files func() []string, log zerolog.Logger, changed func()) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	fw := &fileWatch{w: w}
	paths := files()
	if err := fw.update(paths); err != nil {
		w.Close()
		return nil, err
	}
	sums := hashFiles(paths)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if fire == nil && fw.relevant(ev.Name) {
					fire = time.After(watchCoalesce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn().Err(err).Msg("config watch error")
			case <-fire:
				fire = nil
				paths := files()
				now := hashFiles(paths)
				if !sameSums(now, sums) {
					// Remember what was read before reloading: a change
					// made while changed runs raises a new event and is
					// compared against these sums, so it is not lost.
					changed()
					sums = map[string]string{}
					for _, p := range files() {
						h, ok := now[p]
						if !ok {
							h = hashFiles([]string{p})[p] // a path the reload introduced
						}
						sums[p] = h
					}
				}
				if err := fw.update(files()); err != nil {
					log.Warn().Err(err).Msg("config watch")
				}
			}
		}
	}()
	return func() { w.Close(); <-done }, nil
}

// fileWatch is the set of directory entries being watched: for each
// directory, the names in it whose change can change what a watched path
// reads.
type fileWatch struct {
	w    *fsnotify.Watcher
	dirs map[string]map[string]bool
}

// update watches the entries paths depend on now and stops watching
// directories no longer needed. It fails only when the directory of one
// of paths itself cannot be watched.
func (fw *fileWatch) update(paths []string) error {
	next := map[string]map[string]bool{}
	for _, p := range paths {
		for dir, names := range watchPoints(p) {
			if next[dir] == nil {
				next[dir] = map[string]bool{}
			}
			for n := range names {
				next[dir][n] = true
			}
		}
	}
	for dir := range fw.dirs {
		if next[dir] == nil {
			_ = fw.w.Remove(dir) // gone already when the kubelet deleted it
		}
	}
	var first error
	for dir := range next {
		if fw.dirs[dir] != nil {
			continue
		}
		if err := fw.w.Add(dir); err != nil {
			delete(next, dir)
			if first == nil && isParentOfAny(dir, paths) {
				first = fmt.Errorf("watch %s: %w", dir, err)
			}
		}
	}
	fw.dirs = next
	return first
}

func isParentOfAny(dir string, paths []string) bool {
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil && filepath.Dir(abs) == dir {
			return true
		}
	}
	return false
}

// relevant reports whether an event on name can change a watched file.
func (fw *fileWatch) relevant(name string) bool {
	return fw.dirs[filepath.Dir(name)][filepath.Base(name)]
}

// watchPoints maps directories to the entries in them that path depends
// on: path itself, every symlink met while resolving it (in any
// component), and the file it finally resolves to.
func watchPoints(path string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(p string) {
		d, b := filepath.Dir(p), filepath.Base(p)
		if out[d] == nil {
			out[d] = map[string]bool{}
		}
		out[d][b] = true
	}
	p, err := filepath.Abs(path)
	if err != nil {
		return out
	}
	add(p)
	for range maxSymlinkHops {
		link, target, rest := firstSymlink(p)
		if link == "" {
			break
		}
		add(link)
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(link), target)
		}
		p = filepath.Join(target, rest)
	}
	add(p)
	return out
}

// firstSymlink returns the first component of the absolute path p that
// is a symlink, its target, and the rest of p below it; link is empty
// when there is none (or a component does not exist).
func firstSymlink(p string) (link, target, rest string) {
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(p), string(filepath.Separator)), string(filepath.Separator))
	cur := string(filepath.Separator)
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return "", "", ""
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			t, err := os.Readlink(cur)
			if err != nil {
				return "", "", ""
			}
			return cur, t, filepath.Join(parts[i+1:]...)
		}
	}
	return "", "", ""
}

// hashFiles maps each path to the SHA-256 of its bytes, or to "" when it
// cannot be read.
func hashFiles(paths []string) map[string]string {
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			out[p] = ""
			continue
		}
		sum := sha256.Sum256(b)
		out[p] = string(sum[:])
	}
	return out
}

func sameSums(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for p, h := range a {
		if g, ok := b[p]; !ok || g != h {
			return false
		}
	}
	return true
}

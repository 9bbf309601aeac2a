// Package image builds brokerlab's container image from the working tree and
// connects to the Docker engine that runs it.
//
// The image is docker/Dockerfile: FROM scratch plus the static brokerlab
// binary (CGO_ENABLED=0) and docker/pause, the docker runtime's
// network-namespace holder. Build compiles both into docker/build/, hashes
// them and tags the image brokerlab:<hash>, so unchanged binaries reuse the
// image built before; every build is also tagged brokerlab:local, the tag
// docker/compose.yaml and hand-run containers use.
//
// Connect pins the client to the API version the engine reports, because
// dockertest's client otherwise asks for old API versions (1.25 for builds
// with a Dockerfile name) that recent engines refuse. Builds send the
// context as an in-memory tar with the default Dockerfile name, for the
// legacy builder; nothing is ever pulled.
//
//	pool, err := image.Connect(ctx)
//	img, err := image.Build(ctx, pool, image.Options{})
//	// run containers from img.Ref(), e.g. "brokerlab:3f2a9c0d1e4b5a68"
package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

const (
	// Repository is the name every brokerlab image is tagged under.
	Repository = "brokerlab"
	// LocalTag is the tag of the newest build: brokerlab:local.
	LocalTag = "local"
	// Module is the module path Build looks for to find the source tree.
	Module = "github.com/brokerlab/brokerlab"
	// DefaultSocket is the engine endpoint when DOCKER_HOST is unset.
	DefaultSocket = "unix:///var/run/docker.sock"
	// keepImages is how many hash-tagged images survive a build (the
	// newest ones), so repeated edits do not fill the disk.
	keepImages = 3
)

// ErrNoSource means the brokerlab source tree was not found, so the image
// cannot be built here.
var ErrNoSource = errors.New("image: brokerlab source tree not found")

// Image is a built brokerlab image.
type Image struct {
	Repository string
	// Tag is the first 16 hex digits of the binaries' SHA-256, or LocalTag
	// for an image Build did not make.
	Tag string
	// Binary is the path of the binary the image holds ("" when unknown).
	Binary string
	// Built is true when this call built the image, false when it reused
	// one with the same hash.
	Built bool
}

// Ref returns repository:tag.
func (i Image) Ref() string { return i.Repository + ":" + i.Tag }

// Endpoint returns the engine address Connect uses: DOCKER_HOST, else the
// default socket.
func Endpoint() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultSocket
}

// Connect returns a dockertest pool on the engine at Endpoint whose client
// speaks the engine's own API version. It fails, without waiting long,
// when no engine answers.
func Connect(ctx context.Context) (*dockertest.Pool, error) {
	ep := Endpoint()
	probe, err := newClient(ep, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := probe.PingWithContext(ctx); err != nil {
		return nil, err
	}
	env, err := probe.Version()
	if err != nil {
		return nil, fmt.Errorf("image: engine version: %w", err)
	}
	api := env.Get("ApiVersion")
	if api == "" {
		return nil, errors.New("image: the engine reports no API version")
	}
	client, err := newClient(ep, api)
	if err != nil {
		return nil, err
	}
	return &dockertest.Pool{Client: client, MaxWait: time.Minute}, nil
}

// NewClient returns another client of the engine at Endpoint speaking api
// (as reported by the engine's /version). go-dockerclient's Client rewrites
// its version fields on every container start, so goroutines that start
// containers concurrently need a client each.
func NewClient(api string) (*dc.Client, error) { return newClient(Endpoint(), api) }

// newClient returns a client for ep, pinned to api unless api is "".
func newClient(ep, api string) (*dc.Client, error) {
	if certs := os.Getenv("DOCKER_CERT_PATH"); certs != "" && !strings.HasPrefix(ep, "unix://") {
		return dc.NewVersionedTLSClient(ep, filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem"), filepath.Join(certs, "ca.pem"), api)
	}
	if api == "" {
		return dc.NewClient(ep)
	}
	return dc.NewVersionedClient(ep, api)
}

// Options configure Build.
type Options struct {
	// SourceDir is the root of the brokerlab module; "" searches the working
	// directory and its parents.
	SourceDir string
	// OutDir receives the binary; "" is SourceDir/docker/build.
	OutDir string
	// Logger receives build progress; nil discards it.
	Logger *slog.Logger
}

// Build compiles the binary from the source tree and builds the image,
// unless an image of the same binary exists. It tags the result
// brokerlab:local too, and removes all but the newest few older
// brokerlab:<hash> images that no container uses.
func Build(ctx context.Context, pool *dockertest.Pool, opts Options) (Image, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := opts.SourceDir
	if src == "" {
		var err error
		if src, err = FindSource(); err != nil {
			return Image{}, err
		}
	}
	out := opts.OutDir
	if out == "" {
		out = filepath.Join(src, "docker", "build")
	}
	dockerfile, err := os.ReadFile(filepath.Join(src, "docker", "Dockerfile"))
	if err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	arch := "amd64"
	if env, err := pool.Client.Version(); err == nil && env.Get("Arch") != "" {
		arch = env.Get("Arch")
	}
	bin, sum, err := compile(ctx, src, out, arch)
	if err != nil {
		return Image{}, err
	}
	img := Image{Repository: Repository, Tag: sum[:16], Binary: bin}
	if _, err := pool.Client.InspectImage(img.Ref()); err == nil {
		log.Debug("reusing image", "image", img.Ref())
	} else {
		start := time.Now()
		if err := buildImage(ctx, pool.Client, img.Ref(), dockerfile, out); err != nil {
			return Image{}, err
		}
		img.Built = true
		log.Info("built image", "image", img.Ref(), "took", time.Since(start).Round(time.Millisecond))
	}
	if err := pool.Client.TagImage(img.Ref(), dc.TagImageOptions{Repo: Repository, Tag: LocalTag, Force: true, Context: ctx}); err != nil {
		return Image{}, fmt.Errorf("image: tag %s as %s:%s: %w", img.Ref(), Repository, LocalTag, err)
	}
	prune(pool.Client, img, log)
	return img, nil
}

// Local returns brokerlab:local when the engine has it: for runs without
// the source tree, after someone built the image by hand.
func Local(pool *dockertest.Pool) (Image, error) {
	img := Image{Repository: Repository, Tag: LocalTag}
	if _, err := pool.Client.InspectImage(img.Ref()); err != nil {
		return Image{}, fmt.Errorf("image: %s: %w (build it with `go run ./docker/buildimage` in the brokerlab source tree)", img.Ref(), err)
	}
	return img, nil
}

// FindSource returns the brokerlab module root at or above the working
// directory.
func FindSource() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	for {
		if isModuleRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoSource
		}
		dir = parent
	}
}

func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`) == Module
		}
	}
	return false
}

// binaries are the programs in the image: name in the image and build
// context -> package.
var binaries = []struct{ name, pkg string }{
	{"brokerlab", "./cmd/brokerlab"},
	{"pause", "./docker/pause"},
}

// compile builds the static binaries into out and returns the brokerlab
// binary's path and the SHA-256 over all of them in hex. Each is written to
// a temporary file first and renamed, so concurrent builds never expose a
// half-written binary.
func compile(ctx context.Context, src, out, arch string) (string, string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", "", fmt.Errorf("image: %w", err)
	}
	h := sha256.New()
	for _, b := range binaries {
		data, err := compileOne(ctx, src, out, arch, b.name, b.pkg)
		if err != nil {
			return "", "", err
		}
		h.Write(data)
	}
	return filepath.Join(out, binaries[0].name), hex.EncodeToString(h.Sum(nil)), nil
}

func compileOne(ctx context.Context, src, out, arch, name, pkg string) ([]byte, error) {
	tmp, err := os.CreateTemp(out, "."+name+"-*")
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	// No -trimpath: with it every package compiles anew (about 2 min cold on
	// 2 cores); without it the packages that do not depend on cgo come from
	// the build cache `go test` has just filled.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), pkg)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("image: go build %s: %w\n%s", pkg, err, msg)
	}
	data, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(out, name)); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return data, nil
}

// buildImage sends the Dockerfile and the binaries in dir as the build
// context.
func buildImage(ctx context.Context, client *dc.Client, ref string, dockerfile []byte, dir string) error {
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	type file struct {
		name string
		mode int64
		data []byte
	}
	files := []file{{"Dockerfile", 0o644, dockerfile}}
	for _, b := range binaries {
		data, err := os.ReadFile(filepath.Join(dir, b.name))
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		files = append(files, file{b.name, 0o755, data})
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("image: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	var output bytes.Buffer
	err := client.BuildImage(dc.BuildImageOptions{
		Name:                ref,
		InputStream:         &tarball,
		OutputStream:        &output,
		RmTmpContainer:      true,
		ForceRmTmpContainer: true,
		Context:             ctx,
	})
	if err != nil {
		return fmt.Errorf("image: build %s: %w\n%s", ref, err, tail(output.String(), 2000))
	}
	return nil
}

// prune removes hash-tagged brokerlab images beyond the newest keepImages.
// Images in use by a container fail to delete and are left alone.
func prune(client *dc.Client, current Image, log *slog.Logger) {
	imgs, err := client.ListImages(dc.ListImagesOptions{Filters: map[string][]string{"reference": {Repository}}})
	if err != nil {
		return
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Created > imgs[j].Created })
	kept := 0
	for _, im := range imgs {
		hashTagged, isCurrent := false, false
		for _, t := range im.RepoTags {
			tag, _ := strings.CutPrefix(t, Repository+":")
			isCurrent = isCurrent || t == current.Ref() || tag == LocalTag
			hashTagged = hashTagged || (len(tag) == 16 && isHex(tag))
		}
		if isCurrent || !hashTagged {
			continue
		}
		if kept < keepImages-1 {
			kept++
			continue
		}
		for _, t := range im.RepoTags {
			if err := client.RemoveImage(t); err == nil {
				log.Debug("removed old image", "image", t)
			}
		}
	}
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

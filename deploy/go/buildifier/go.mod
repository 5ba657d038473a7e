module polder/deploy/go/buildifier

go 1.24

// buildifier, the formatter and linter of BUILD, WORKSPACE and .bzl files, built by
// tools/setup/setup.sh into /var/cache/polder/go-tools-<hash>/bin. golang.org/x/sys is pinned
// here because buildtools' go.mod leaves it out (its go.sum has v0.10.0, the version
// github.com/google/safeopen requires): unpinned, the go command would take its newest version,
// and with it a newer minimum Go, on each fresh build.

tool github.com/bazelbuild/buildtools/buildifier

require (
	github.com/bazelbuild/buildtools v0.0.0-20260904073137-eaa4d125b423 // indirect
	github.com/golang/protobuf v1.5.0 // indirect
	github.com/google/safeopen v0.0.0-20260327150837-43626d6f4685 // indirect
	golang.org/x/sys v0.10.0 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)

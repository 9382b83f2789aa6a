# arcagent build and test entry points. `make test` is the README's test command.
GO       ?= go
PREFIX   ?= /opt/azcmagent
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG      := github.com/arcagent/arcagent/internal/buildinfo
LDFLAGS  := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).Date=$(DATE)
FUZZTIME ?= 10s
# staticcheck, pinned; `go run` fetches it through the module proxy once and
# caches it like any module.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build build-windows windows-check test bench fuzz install deb clean e2e

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# The Windows build of the pre-onboarding audit (config and audit; the
# daemons say they are not supported there): bin/windows_amd64/*.exe.
build-windows:
	GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/windows_amd64/ ./cmd/...

# Cross-compile every command for windows/amd64 and vet every package for it.
windows-check:
	GOOS=windows GOARCH=amd64 $(GO) build ./cmd/...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...

test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(MAKE) --no-print-directory windows-check
	$(GO) run $(STATICCHECK) ./...
	$(GO) test -race -count=1 ./...

# The installed-system test (root, debootstrap, the Debian mirror): a
# throwaway Debian root, the .deb installed with dpkg, the privilege audit,
# purge and upgrades (e2e/). The debootstrap root is cached as a tarball in
# $(E2E_CACHE).
E2E_CACHE ?= /var/cache/arcagent-e2e
e2e:
	ARCAGENT_E2E_CACHE=$(E2E_CACHE) $(GO) test -tags e2e -count=1 -v -timeout 25m ./e2e/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Run every fuzz target briefly ($(FUZZTIME) each).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

install: build
	install -d -m 0755 $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/arcagent $(DESTDIR)$(PREFIX)/bin/arcagent
	ln -sf arcagent $(DESTDIR)$(PREFIX)/bin/azcmagent
	ln -sf arcagent $(DESTDIR)$(PREFIX)/bin/himds
	echo $(VERSION) > $(DESTDIR)$(PREFIX)/bin/VERSION
	chmod 0644 $(DESTDIR)$(PREFIX)/bin/VERSION
	@if [ -f bin/arcserver ]; then install -d -m 0755 $(DESTDIR)/usr/local/bin && install -m 0755 bin/arcserver $(DESTDIR)/usr/local/bin/arcserver; fi

# The Debian packages dist/arcagent_<version>_<arch>.deb and
# dist/arcserver_<version>_<arch>.deb (docs/packaging.md), for every ARCH
# (default: both). VERSION is mapped to a Debian version by internal/debpkg.
# Set on the command line only (make deb ARCH=amd64): an ARCH in the
# environment (x86_64 on some CI machines) is not a Go or Debian name.
ARCH = amd64 arm64
deb:
	@set -e; for arch in $(ARCH); do \
	  mkdir -p dist/bin/linux_$$arch; \
	  echo "build linux/$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/bin/linux_$$arch/ ./cmd/arcagent ./cmd/arcserver; \
	  $(GO) run ./packaging/mkdeb -version '$(VERSION)' -arch $$arch -bin dist/bin/linux_$$arch -units packaging/systemd -out dist; \
	done

clean:
	rm -rf bin dist

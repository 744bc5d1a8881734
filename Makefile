# Release builds and Debian packages. The tests are `bash .ci/test`.
#
#   make build   static binaries for amd64, arm64 and armv7 into dist/
#   make deb     dist/sitelink_<version>_<arch>.deb for amd64, arm64, armhf
#   make clean   remove dist/
#   make bench   the project's benchmark, full run (minutes): every figure
#                against its floor measured in the same run, as the
#                README's Performance table (cmd/sitelink-bench)
#
# The packages are checked by .ci/deb-test (part of the test command).
#
# nfpm is pinned as a Go tool in its own module, .ci/tools/go.mod (run as
# `go tool -modfile=.ci/tools/go.mod nfpm`): a package build needs nothing
# but Go, and the packager's dependencies stay out of the product's module
# graph. VERSION is what the binary reports; DEB_VERSION is VERSION
# rewritten for dpkg, which wants a leading digit and orders `~` before
# anything: v1.2.3 -> 1.2.3, v1.2.3-4-gabc -> 1.2.3+git4.gabc, abc (no tag
# yet) -> 0.0.0~gitabc, -dirty -> .dirty.
# Both can be overridden: `make deb DEB_VERSION=1.2.3-2`.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -E \
	-e 's/^v([0-9])/\1/' \
	-e 's/^([0-9][^-]*)-([0-9]+)-g([0-9a-f]+)/\1+git\2.g\3/' \
	-e 's/^([0-9][^-]*)-dev$$/\1~dev/' \
	-e 's/^([0-9a-f]+)(-dirty)?$$/0.0.0~git\1\2/' \
	-e 's/^([^+]*)-dirty$$/\1+dirty/' \
	-e 's/-dirty$$/.dirty/')

DIST := dist
GO ?= go
# Release builds use go.mod's toolchain line even where the machine's Go
# defaults to GOTOOLCHAIN=local (`make GOTOOLCHAIN=local` still overrides).
export GOTOOLCHAIN = auto
LDFLAGS := -s -w -X main.version=$(VERSION)
NFPM := $(GO) tool -modfile=.ci/tools/go.mod nfpm
# .ci/deb-test packs a changed config through the same rule.
NFPM_CONFIG ?= .ci/nfpm.yaml

# Go's arch name (binary suffix) -> Debian's arch name.
ARCHES := amd64 arm64 arm
deb_arch_amd64 := amd64
deb_arch_arm64 := arm64
deb_arch_arm := armhf

BINS := $(foreach a,$(ARCHES),$(DIST)/sitelink-linux-$(a))
DEBS := $(foreach a,$(ARCHES),$(DIST)/sitelink_$(DEB_VERSION)_$(deb_arch_$(a)).deb)

.PHONY: build deb clean deb-version bench FORCE
.DEFAULT_GOAL := build

build: $(BINS)

deb: $(DEBS)

clean:
	rm -rf $(DIST)

# Not part of the tests: CI runs its short version (`go test
# ./cmd/sitelink-bench`), which checks that the table is produced.
# BENCHFLAGS adds flags, e.g. `make bench BENCHFLAGS='-only stop,drain'`.
bench:
	$(GO) run ./cmd/sitelink-bench -format markdown $(BENCHFLAGS)

# The package version `make deb` would use (for scripts: `make -s deb-version`).
deb-version:
	@echo '$(DEB_VERSION)'

# Always rebuilt (Go's build cache makes that cheap) so a new VERSION or
# source change never ships a stale binary.
$(DIST)/sitelink-linux-%: FORCE
	@mkdir -p $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(if $(filter arm,$*),GOARM=7) \
		$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/sitelink

define deb_rule
$(DIST)/sitelink_$(DEB_VERSION)_$(deb_arch_$(1)).deb: $(DIST)/sitelink-linux-$(1) $(NFPM_CONFIG) FORCE
	SITELINK_BIN=$$< SITELINK_ARCH=$(deb_arch_$(1)) SITELINK_VERSION=$(DEB_VERSION) \
		$(NFPM) package --config $(NFPM_CONFIG) --packager deb --target $$@
endef
$(foreach a,$(ARCHES),$(eval $(call deb_rule,$(a))))

FORCE:

"""polder_npm: files of the pinned npm packages that go into the build (ADR 0019 §2).

tools/setup/setup.sh installs deploy/npm/package-lock.json into POLDER_NPM_HOME (a directory
named by the lockfile's hash, outside the clone); this repository rule exposes the listed files
of it to Bazel. A changed POLDER_NPM_HOME (a new lockfile) re-runs the rule; the installed
package's version is checked against deploy/npm/package.json, so the build never links a
version the lockfile does not pin.
"""

def _polder_npm_impl(rctx):
    home = rctx.os.environ.get("POLDER_NPM_HOME", "")
    if not home:
        fail("POLDER_NPM_HOME is not set: run tools/setup/setup.sh (./test.sh and ./demo.sh do) " +
             "and export what `tools/setup/setup.sh --print-env` prints")
    pins = rctx.read(rctx.path(Label("//deploy/npm:package.json")))
    rctx.path(Label("//deploy/npm:package-lock.json"))  # a new lockfile re-runs the rule
    exported = []
    for package, files in rctx.attr.packages.items():
        root = "%s/node_modules/%s" % (home, package)
        manifest = rctx.path(root + "/package.json")
        if not manifest.exists:
            fail("npm package %s is not installed in %s: run tools/setup/setup.sh" % (package, home))
        installed = json_version(rctx.read(manifest))
        if ('"%s": "%s"' % (package, installed)) not in pins:
            fail("npm package %s %s in %s is not the version deploy/npm/package.json pins: " %
                 (package, installed, home) + "run tools/setup/setup.sh")
        for f in files:
            src = rctx.path("%s/%s" % (root, f))
            if not src.exists:
                fail("%s is missing from npm package %s in %s" % (f, package, home))
            dest = "%s/%s" % (package, f)
            rctx.symlink(src, dest)
            exported.append(dest)
    rctx.file("BUILD", "\n".join([
        "package(default_visibility = [\"//visibility:public\"])",
        "",
        "exports_files(%s)" % repr(sorted(exported)),
        "",
    ]))

def json_version(manifest):
    """The top-level "version" of a package.json (the first such key: npm writes it first)."""
    at = manifest.find('"version"')
    if at < 0:
        fail("a package.json without a version")
    rest = manifest[at + len('"version"'):]
    start = rest.find('"')
    end = rest.find('"', start + 1)
    return rest[start + 1:end]

polder_npm = repository_rule(
    implementation = _polder_npm_impl,
    environ = ["POLDER_NPM_HOME"],
    local = True,
    attrs = {
        # package name -> files in it (relative to the package's directory).
        "packages": attr.string_list_dict(mandatory = True),
    },
)

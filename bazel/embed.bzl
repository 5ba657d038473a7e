"""embed_files: files linked into a binary as bytes (ADR 0019 §1)."""

def embed_files(name, files, namespace, function, visibility = None):
    """A cc_library `name` whose header `<name>.h` declares `function()`: the files as StaticFile.

    Args:
      name: the library; its header is `<package>/<name>.h`.
      files: dict of URL path ("/dashboard/app.js") to a label of one file.
      namespace: the C++ namespace of `function` ("polder::aggregator").
      function: the function's name.
      visibility: of the library.
    """
    header = name + ".h"
    source = name + ".cc"
    include = (native.package_name() + "/" + header) if native.package_name() else header
    labels = []
    args = []
    for url, label in sorted(files.items()):
        labels.append(label)
        args.append("%s=$(location %s)" % (url, label))
    native.genrule(
        name = name + "_gen",
        srcs = labels,
        outs = [header, source],
        cmd = " ".join([
            "$(location //tools/embed:embed_files)",
            "--cc=$(location %s)" % source,
            "--header=$(location %s)" % header,
            "--include=" + include,
            "--namespace=" + namespace,
            "--function=" + function,
        ] + args),
        tools = ["//tools/embed:embed_files"],
    )
    native.cc_library(
        name = name,
        srcs = [source],
        hdrs = [header],
        visibility = visibility,
        deps = [
            "//common/http:static_files",
            "//third_party:absl",
        ],
    )

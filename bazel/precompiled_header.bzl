"""Precompiled headers for clang (the compiler .bazelrc sets), which Bazel 4 does not offer.

Most of a test file's compile time goes to parsing the same headers (gtest, gmock, gRPC, the
generated service, abseil) and instantiating the same templates: 3 to 4 s of CPU a file, 1.2
to 1.9 s with a PCH. `cc_precompiled_header` compiles such a header once per configuration,
with exactly the flags the C++ rules use for a source file (the toolchain's, --copt and
--cxxopt, -fPIC), so clang accepts it; `pch_copts` makes a target's compiles start from it:

    cc_precompiled_header(name = "test_pch", hdr = "test_pch.h", deps = [...])
    cc_test(..., copts = pch_copts(":test_pch"), deps = [":test_pch", ...])

The target gives its dependents the PCH and every header it was built from (clang checks them),
never their libraries: a file still depends on what it uses.
"""

load("@bazel_tools//tools/build_defs/cc:action_names.bzl", "ACTION_NAMES")
load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")

def _cc_precompiled_header_impl(ctx):
    pch = ctx.actions.declare_file(ctx.label.name + ".pch")
    if ctx.var["COMPILATION_MODE"] == "opt":
        # Optimized builds compile a binary's files without -fPIC and a library's both ways,
        # and a PCH serves only one: they go without (see pch_copts).
        ctx.actions.write(pch, "")
        return [DefaultInfo(files = depset([pch])), CcInfo()]

    cc_toolchain = find_cpp_toolchain(ctx)
    features = cc_common.configure_features(
        ctx = ctx,
        cc_toolchain = cc_toolchain,
        requested_features = ctx.features,
        unsupported_features = ctx.disabled_features,
    )
    deps = cc_common.merge_cc_infos(
        cc_infos = [dep[CcInfo] for dep in ctx.attr.deps],
    ).compilation_context
    variables = cc_common.create_compile_variables(
        cc_toolchain = cc_toolchain,
        feature_configuration = features,
        source_file = ctx.file.hdr.path,
        output_file = pch.path,
        user_compile_flags = ctx.fragments.cpp.copts + ctx.fragments.cpp.cxxopts + [
            "-x",
            "c++-header",
            # Instantiated once here rather than in every file that includes the header.
            "-fpch-instantiate-templates",
            # The PCH carries the text of the headers it was built from, so a compile that
            # uses it needs none of them where the PCH says they were.
            "-Xclang",
            "-fmodules-embed-all-files",
            # No modification times of its headers in the PCH: Bazel rebuilds it whenever their
            # content changes, while a header regenerated with the same content (protoc's, after
            # a build of another configuration) would get a new time and clang would refuse
            # the PCH ("has been modified since the precompiled header was built").
            "-Xclang",
            "-fno-pch-timestamp",
        ],
        include_directories = deps.includes,
        quote_include_directories = depset(["."], transitive = [deps.quote_includes]),
        system_include_directories = deps.system_includes,
        preprocessor_defines = deps.defines,
        # Outside optimized builds Bazel compiles binaries' and libraries' files alike, -fPIC.
        use_pic = True,
    )
    action = ACTION_NAMES.cpp_compile
    ctx.actions.run(
        executable = cc_common.get_tool_for_action(
            feature_configuration = features,
            action_name = action,
        ),
        arguments = cc_common.get_memory_inefficient_command_line(
            feature_configuration = features,
            action_name = action,
            variables = variables,
        ),
        env = cc_common.get_environment_variables(
            feature_configuration = features,
            action_name = action,
            variables = variables,
        ),
        inputs = depset([ctx.file.hdr], transitive = [deps.headers, cc_toolchain.all_files]),
        outputs = [pch],
        mnemonic = "CppPrecompileHeader",
        # The PCH names its headers by absolute path, which a compile using it reports as what
        # it included: outside a sandbox that path is in Bazel's execution root, which Bazel's
        # check of a compile's inclusions accepts (a sandbox's is gone and is refused).
        execution_requirements = {"no-sandbox": "1"},
        progress_message = "Precompiling %s" % ctx.file.hdr.short_path,
    )
    headers = depset([pch, ctx.file.hdr], transitive = [deps.headers])
    return [
        DefaultInfo(files = depset([pch])),
        CcInfo(compilation_context = cc_common.create_compilation_context(
            headers = headers,
            includes = deps.includes,
            quote_includes = deps.quote_includes,
            system_includes = deps.system_includes,
            defines = deps.defines,
        )),
    ]

cc_precompiled_header = rule(
    implementation = _cc_precompiled_header_impl,
    doc = "A clang precompiled header of `hdr`, built with the flags of the C++ rules.",
    attrs = {
        "hdr": attr.label(allow_single_file = [".h"], mandatory = True),
        "deps": attr.label_list(providers = [CcInfo]),
        "_cc_toolchain": attr.label(default = "@bazel_tools//tools/cpp:current_cc_toolchain"),
    },
    fragments = ["cpp"],
    toolchains = ["@bazel_tools//tools/cpp:toolchain_type"],
    incompatible_use_toolchain_transition = True,
)

def pch_copts(pch):
    """The copts that make a target's compiles start from `pch` (also one of its deps)."""
    return select({
        "//bazel:opt": [],
        "//conditions:default": ["-include-pch", "$(execpath %s)" % pch],
    })

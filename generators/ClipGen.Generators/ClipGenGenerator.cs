using System.Linq;
using ClipGen.Generators.Model;
using ClipGen.Specs;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace ClipGen.Generators
{
    /// <summary>
    /// Turns every YAML spec (an AdditionalFile with metadata <c>ClipGenSpec="true"</c>) into a typed TorchSharp CLIP
    /// model, its key table and a registry entry. Files marked <c>ClipGenSpecLibrary="true"</c> (the built-ins the ClipGen
    /// package ships) may be extended but emit nothing. Pipeline: files → <see cref="SpecParser"/> (parse, resolve, plan)
    /// → <see cref="Emitter"/>; diagnostics go out separately so that moving a line re-emits no code.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class ClipGenGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking step names (used by the incremental tests).</summary>
        public static class Steps
        {
            public const string SpecFiles = nameof(SpecFiles);
            public const string Resolve = nameof(Resolve);
            public const string Models = nameof(Models);
            public const string Registry = nameof(Registry);
            public const string Diagnostics = nameof(Diagnostics);
        }

        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var files = context.AdditionalTextsProvider
                .Combine(context.AnalyzerConfigOptionsProvider)
                .Select(static (pair, _) => (File: pair.Left, Kind: Classify(pair.Right.GetOptions(pair.Left))))
                .Where(static f => f.Kind != FileKind.None)
                .Select(static (f, ct) => new SpecFile(f.File.Path, f.File.GetText(ct)?.ToString() ?? "", f.Kind == FileKind.Library))
                .WithTrackingName(Steps.SpecFiles);

            var ns = context.AnalyzerConfigOptionsProvider.Select(static (o, _) => ModelsNamespace(o.GlobalOptions));

            var resolved = files.Collect()
                .Select(static (arr, ct) => SpecParser.Resolve(arr, ct))
                .WithTrackingName(Steps.Resolve);

            var models = resolved.SelectMany(static (r, _) => r.Models)
                .Combine(ns)
                .WithTrackingName(Steps.Models);
            context.RegisterSourceOutput(models, static (spc, pair) =>
            {
                try
                {
                    foreach (var (name, text) in Emitter.EmitModel(pair.Left, pair.Right)) spc.AddSource(name, text);
                }
                catch (System.Exception e) when (!(e is System.OperationCanceledException))
                {
                    ReportInternalError(spc, "emitting " + pair.Left.Spec.ClassName, e);
                }
            });

            var registry = resolved.Select(static (r, _) => r.Models.Select(m => m.Spec.ClassName).ToEquatableArray())
                .Combine(ns)
                .WithTrackingName(Steps.Registry);
            context.RegisterSourceOutput(registry, static (spc, pair) =>
            {
                try
                {
                    if (pair.Left.Count > 0) spc.AddSource("ClipModels.Registry.g.cs", Emitter.EmitRegistry(pair.Left, pair.Right));
                }
                catch (System.Exception e) when (!(e is System.OperationCanceledException))
                {
                    ReportInternalError(spc, "emitting the registry", e);
                }
            });

            var diagnostics = resolved.Select(static (r, _) => r.Diagnostics).WithTrackingName(Steps.Diagnostics);
            context.RegisterSourceOutput(diagnostics, static (spc, diags) =>
            {
                foreach (var d in diags) spc.ReportDiagnostic(DiagnosticDescriptors.Create(d));
            });
        }

        /// <summary>A crash while emitting becomes CLIPGEN099 at the spec (a bad spec is an error at its YAML, never a generator crash), not the compiler's generic generator warning.</summary>
        static void ReportInternalError(SourceProductionContext spc, string what, System.Exception e) =>
            spc.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.Get(SpecDiagnosticIds.InternalError), Location.None,
                "ClipGen's generator failed while " + what + " (" + e.GetType().Name + ": " + e.Message.Replace('\n', ' ') + "); please report it with the spec files"));

        enum FileKind { None, Spec, Library }

        static FileKind Classify(AnalyzerConfigOptions options) =>
            IsTrue(options, "build_metadata.AdditionalFiles.ClipGenSpec") ? FileKind.Spec
            : IsTrue(options, "build_metadata.AdditionalFiles.ClipGenSpecLibrary") ? FileKind.Library
            : FileKind.None;

        static bool IsTrue(AnalyzerConfigOptions options, string key) =>
            options.TryGetValue(key, out var v) && string.Equals(v, "true", System.StringComparison.OrdinalIgnoreCase);

        static string ModelsNamespace(AnalyzerConfigOptions global)
        {
            if (global.TryGetValue("build_property.ClipGenModelsNamespace", out var ns) && !string.IsNullOrWhiteSpace(ns)) return ns.Trim();
            if (global.TryGetValue("build_property.RootNamespace", out var root) && !string.IsNullOrWhiteSpace(root)) return root.Trim() + ".Models";
            return "ClipGen.Models";
        }
    }
}

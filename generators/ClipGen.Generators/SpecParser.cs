using System;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using ClipGen.Generators.Model;
using ClipGen.Specs;

namespace ClipGen.Generators
{
    /// <summary>Parser step: spec files → resolved specs and their key tables (the planner), plus diagnostics.</summary>
    internal static class SpecParser
    {
        public static ResolvedSpecs Resolve(ImmutableArray<SpecFile> files, CancellationToken ct)
        {
            try
            {
                var docs = files.Where(f => !f.Library).Select(f => SpecDocument.Parse(f.Path, f.Text)).ToList();
                var library = files.Where(f => f.Library).Select(f => SpecDocument.Parse(f.Path, f.Text)).ToList();
                ct.ThrowIfCancellationRequested();
                var resolution = SpecResolver.Resolve(docs, library);
                var models = resolution.Specs
                    .OrderBy(s => s.ClassName, StringComparer.Ordinal)
                    .Select(s =>
                    {
                        var plan = ClipPlan.From(s);
                        return new ModelToEmit(s, Emitter.Facts(s, plan), plan.KeyTable.ToEquatableArray(), System.IO.Path.GetFileName(resolution.SpecFiles[s.Name]));
                    })
                    .ToEquatableArray();
                return new ResolvedSpecs(models, resolution.Diagnostics.ToEquatableArray());
            }
            catch (OperationCanceledException) { throw; }
            catch (Exception e)
            {
                var where = files.Length > 0 ? files[0].Path : "";
                var diag = new SpecDiagnostic(SpecDiagnosticIds.InternalError,
                    "ClipGen's generator failed (" + e.GetType().Name + ": " + e.Message.Replace('\n', ' ') + "); please report it with the spec files",
                    new SpecLocation(where, 1, 1));
                return new ResolvedSpecs(EquatableArray<ModelToEmit>.Empty, new[] { diag }.ToEquatableArray());
            }
        }
    }
}

using System.Collections.Generic;
using ClipGen.Specs;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace ClipGen.Generators
{
    /// <summary>Every diagnostic of the generator: ids and titles come from <see cref="SpecDiagnosticIds"/>.</summary>
    internal static class DiagnosticDescriptors
    {
        const string Category = "ClipGen.Spec";
        static readonly Dictionary<string, DiagnosticDescriptor> ById = new Dictionary<string, DiagnosticDescriptor>();

        static readonly string[] Ids =
        {
            SpecDiagnosticIds.YamlSyntax, SpecDiagnosticIds.UnknownKey, SpecDiagnosticIds.MissingField, SpecDiagnosticIds.WrongType,
            SpecDiagnosticIds.InvalidValue, SpecDiagnosticIds.HeadsDoNotDivide, SpecDiagnosticIds.ImageSizeNotDivisible,
            SpecDiagnosticIds.BadVisionLayers, SpecDiagnosticIds.DuplicateName, SpecDiagnosticIds.ExtendsCycle,
            SpecDiagnosticIds.MissingBase, SpecDiagnosticIds.InternalError,
        };

        static DiagnosticDescriptors()
        {
            foreach (var id in Ids)
                ById[id] = new DiagnosticDescriptor(id, SpecDiagnosticIds.Title(id), "{0}", Category, DiagnosticSeverity.Error, isEnabledByDefault: true,
                    helpLinkUri: "docs/spec-format.md#" + id.ToLowerInvariant());
        }

        public static DiagnosticDescriptor Get(string id) => ById.TryGetValue(id, out var d) ? d : ById[SpecDiagnosticIds.InternalError];

        /// <summary>A Roslyn diagnostic at the YAML line and column of the spec file.</summary>
        public static Diagnostic Create(SpecDiagnostic d)
        {
            var loc = d.Location;
            Location location = Location.None;
            if (!string.IsNullOrEmpty(loc.FilePath) && loc.Line > 0)
            {
                var start = new LinePosition(loc.Line - 1, loc.Column - 1);
                var end = new LinePosition(loc.Line - 1, loc.Column - 1 + System.Math.Max(1, loc.Length));
                location = Location.Create(loc.FilePath, new TextSpan(loc.Offset, System.Math.Max(1, loc.Length)), new LinePositionSpan(start, end));
            }
            return Diagnostic.Create(Get(d.Id), location, d.Message);
        }
    }
}

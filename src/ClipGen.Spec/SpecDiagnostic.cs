using System;

namespace ClipGen.Specs
{
    /// <summary>A position in a spec file: 1-based line and column, plus the length of the marked text.</summary>
    public readonly record struct SpecLocation(string FilePath, int Line, int Column, int Length = 1, int Offset = 0)
    {
        public override string ToString() => FilePath + "(" + Line + "," + Column + ")";
    }

    /// <summary>A problem found in a spec. Plain data; the generator turns it into a Roslyn diagnostic at the YAML line.</summary>
    public sealed record SpecDiagnostic(string Id, string Message, SpecLocation Location)
    {
        /// <summary>One line: <c>file(line,col): error CLIPGEN###: message</c>.</summary>
        public override string ToString() => Location.FilePath + "(" + Location.Line + "," + Location.Column + "): error " + Id + ": " + Message;
    }

    /// <summary>All spec diagnostic ids, in one place. The generator's descriptors use these ids and titles.</summary>
    public static class SpecDiagnosticIds
    {
        /// <summary>The YAML is not well formed.</summary>
        public const string YamlSyntax = "CLIPGEN001";
        /// <summary>A key the spec format does not know.</summary>
        public const string UnknownKey = "CLIPGEN002";
        /// <summary>A required field is missing.</summary>
        public const string MissingField = "CLIPGEN003";
        /// <summary>A field has the wrong type (e.g. a string where an int is expected).</summary>
        public const string WrongType = "CLIPGEN004";
        /// <summary>A value is out of range or not one of the allowed words.</summary>
        public const string InvalidValue = "CLIPGEN005";
        /// <summary>A width is not divisible by its head width or head count.</summary>
        public const string HeadsDoNotDivide = "CLIPGEN006";
        /// <summary>The image size is smaller than the patch size (ViT) or not divisible by 32 (ResNet).</summary>
        public const string ImageSizeNotDivisible = "CLIPGEN007";
        /// <summary>Vision <c>layers</c> is neither one int (ViT) nor four ints (ResNet).</summary>
        public const string BadVisionLayers = "CLIPGEN008";
        /// <summary>Two specs share a name or an alias.</summary>
        public const string DuplicateName = "CLIPGEN009";
        /// <summary>A chain of <c>extends</c> loops back on itself.</summary>
        public const string ExtendsCycle = "CLIPGEN010";
        /// <summary><c>extends</c> names a spec that does not exist.</summary>
        public const string MissingBase = "CLIPGEN011";
        /// <summary>The generator itself failed; please report it.</summary>
        public const string InternalError = "CLIPGEN099";

        /// <summary>Short titles, by id.</summary>
        public static string Title(string id)
        {
            switch (id)
            {
                case YamlSyntax: return "Spec YAML syntax error";
                case UnknownKey: return "Unknown spec key";
                case MissingField: return "Missing spec field";
                case WrongType: return "Spec field has the wrong type";
                case InvalidValue: return "Invalid spec value";
                case HeadsDoNotDivide: return "Width not divisible by the head width";
                case ImageSizeNotDivisible: return "Image size does not fit the patch or stride";
                case BadVisionLayers: return "Vision layers must be one int or four ints";
                case DuplicateName: return "Duplicate spec name or alias";
                case ExtendsCycle: return "Spec extends cycle";
                case MissingBase: return "Spec extends a missing base";
                case InternalError: return "ClipGen generator internal error";
                default: return "ClipGen spec error";
            }
        }
    }

    /// <summary>Thrown by the run-time spec loader; carries every diagnostic, the message is the first one as a single line.</summary>
    public sealed class SpecException : Exception
    {
        public SpecException(System.Collections.Generic.IReadOnlyList<SpecDiagnostic> diagnostics)
            : base(diagnostics.Count == 0 ? "invalid spec" : diagnostics[0].ToString() + (diagnostics.Count > 1 ? " (and " + (diagnostics.Count - 1) + " more)" : ""))
        {
            Diagnostics = diagnostics;
        }

        public System.Collections.Generic.IReadOnlyList<SpecDiagnostic> Diagnostics { get; }
    }
}

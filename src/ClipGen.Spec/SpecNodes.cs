using System;
using System.Collections.Generic;
using System.IO;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ClipGen.Specs
{
    /// <summary>A YAML node of a spec file with its location. Used only inside the parser, never in pipeline models.</summary>
    public abstract class SpecNode
    {
        protected SpecNode(SpecLocation location) { Location = location; }
        public SpecLocation Location { get; }
        public abstract string KindName { get; }
    }

    public sealed class SpecScalar : SpecNode
    {
        public SpecScalar(string value, bool quoted, SpecLocation location) : base(location) { Value = value; Quoted = quoted; }
        public string Value { get; }
        /// <summary>True when written in quotes (then it is always a string, never a number).</summary>
        public bool Quoted { get; }
        public override string KindName => "a scalar";
    }

    public sealed class SpecSequence : SpecNode
    {
        public SpecSequence(IReadOnlyList<SpecNode> items, SpecLocation location) : base(location) { Items = items; }
        public IReadOnlyList<SpecNode> Items { get; }
        public override string KindName => "a list";
    }

    public sealed class SpecEntry
    {
        public SpecEntry(string key, SpecLocation keyLocation, SpecNode value) { Key = key; KeyLocation = keyLocation; Value = value; }
        public string Key { get; }
        public SpecLocation KeyLocation { get; }
        public SpecNode Value { get; }
    }

    public sealed class SpecMapping : SpecNode
    {
        public SpecMapping(IReadOnlyList<SpecEntry> entries, SpecLocation location) : base(location) { Entries = entries; }
        public IReadOnlyList<SpecEntry> Entries { get; }
        public override string KindName => "a mapping";

        public SpecEntry? Find(string key)
        {
            foreach (var e in Entries) if (e.Key == key) return e;
            return null;
        }
    }

    /// <summary>One parsed spec file: its root mapping, or the syntax diagnostics that stopped it.</summary>
    public sealed class SpecDocument
    {
        SpecDocument(string path, string text, SpecMapping? root, IReadOnlyList<SpecDiagnostic> diagnostics)
        {
            FilePath = path; Text = text; Root = root; Diagnostics = diagnostics;
        }

        public string FilePath { get; }
        public string Text { get; }
        public SpecMapping? Root { get; }
        public IReadOnlyList<SpecDiagnostic> Diagnostics { get; }

        /// <summary>The value of the top-level <c>name</c> key, if it is a scalar.</summary>
        public string? Name => (Root?.Find("name")?.Value as SpecScalar)?.Value;

        /// <summary>Parses YAML text into located nodes. A syntax error becomes a CLIPGEN001 diagnostic at its line and column.</summary>
        public static SpecDocument Parse(string path, string text)
        {
            var diags = new List<SpecDiagnostic>();
            try
            {
                var stream = new YamlStream();
                stream.Load(new StringReader(text));
                if (stream.Documents.Count == 0)
                {
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.MissingField, "the spec file is empty: it needs at least 'name', 'embed_dim', 'vision' and 'text'", new SpecLocation(path, 1, 1)));
                    return new SpecDocument(path, text, null, diags);
                }
                if (stream.Documents.Count > 1)
                {
                    var loc = Loc(path, stream.Documents[1].RootNode.Start, stream.Documents[1].RootNode.End);
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.YamlSyntax, "a spec file holds exactly one YAML document; split the others into their own files", loc));
                    return new SpecDocument(path, text, null, diags);
                }
                var root = Convert(path, stream.Documents[0].RootNode);
                if (root is SpecMapping m) return new SpecDocument(path, text, m, diags);
                diags.Add(new SpecDiagnostic(SpecDiagnosticIds.WrongType, "the spec must be a mapping of keys (name, embed_dim, vision, text, …), not " + root.KindName, root.Location));
                return new SpecDocument(path, text, null, diags);
            }
            catch (YamlException e)
            {
                var msg = e.Message;
                // YamlDotNet prefixes "(Line: x, Col: y, Idx: z) - (…): "; the location is reported separately.
                var cut = msg.IndexOf("): ", StringComparison.Ordinal);
                if (msg.StartsWith("(Line", StringComparison.Ordinal) && cut >= 0) msg = msg.Substring(cut + 3);
                if (e.InnerException != null && e.InnerException.Message.Length > 0 && !msg.Contains(e.InnerException.Message)) msg += ": " + e.InnerException.Message;
                diags.Add(new SpecDiagnostic(SpecDiagnosticIds.YamlSyntax, "YAML syntax error: " + msg.Trim().TrimEnd('.') + "; fix the YAML here (indentation, a ': ' after each key, closed brackets and quotes)", Loc(path, e.Start, e.End)));
                return new SpecDocument(path, text, null, diags);
            }
        }

        static SpecLocation Loc(string path, Mark start, Mark end)
        {
            var length = (int)Math.Max(1, end.Index - start.Index);
            return new SpecLocation(path, (int)Math.Max(1, start.Line), (int)Math.Max(1, start.Column), length, (int)start.Index);
        }

        static SpecNode Convert(string path, YamlNode node)
        {
            var loc = Loc(path, node.Start, node.End);
            switch (node)
            {
                case YamlScalarNode s:
                    return new SpecScalar(s.Value ?? "", s.Style == ScalarStyle.SingleQuoted || s.Style == ScalarStyle.DoubleQuoted, loc);
                case YamlSequenceNode q:
                    {
                        var items = new List<SpecNode>();
                        foreach (var child in q.Children) items.Add(Convert(path, child));
                        return new SpecSequence(items, loc);
                    }
                case YamlMappingNode m:
                    {
                        var entries = new List<SpecEntry>();
                        foreach (var pair in m.Children)
                        {
                            var keyLoc = Loc(path, pair.Key.Start, pair.Key.End);
                            var key = pair.Key is YamlScalarNode ks ? ks.Value ?? "" : "?";
                            entries.Add(new SpecEntry(key, keyLoc, Convert(path, pair.Value)));
                        }
                        return new SpecMapping(entries, loc);
                    }
                default:
                    return new SpecScalar("", false, loc);
            }
        }
    }
}

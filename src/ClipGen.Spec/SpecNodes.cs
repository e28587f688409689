using System;
using System.Collections.Generic;
using System.IO;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
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

    /// <summary>
    /// Bounds on what a spec's YAML may make the parser build, checked on the parser's events before any node exists:
    /// how deeply lists and mappings nest, and how many nodes the document holds once every alias (<c>*name</c>) is
    /// expanded, which is derived from the length of the text. A real spec nests four levels and holds a few hundred nodes.
    /// </summary>
    public sealed class SpecParseLimits
    {
        /// <summary>The limits <see cref="SpecDocument.Parse(string, string)"/> applies.</summary>
        public static SpecParseLimits Default { get; } = new SpecParseLimits();

        /// <summary>The deepest nesting of lists and mappings (default 64).</summary>
        public int MaxDepth { get; init; } = 64;

        /// <summary>Nodes allowed per character of the text, after alias expansion (default 4).</summary>
        public int NodesPerCharacter { get; init; } = 4;

        /// <summary>Nodes allowed whatever the length (default 4096).</summary>
        public int MinNodes { get; init; } = 4096;

        /// <summary>The node budget of a text of <paramref name="textLength"/> characters.</summary>
        public long MaxNodes(int textLength) => MinNodes + (long)NodesPerCharacter * textLength;
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
        public static SpecDocument Parse(string path, string text) => Parse(path, text, SpecParseLimits.Default);

        /// <summary>
        /// Parses YAML text into located nodes within <paramref name="limits"/>. A syntax error, nesting deeper than
        /// <see cref="SpecParseLimits.MaxDepth"/> or aliases that expand past the node budget become a CLIPGEN001 diagnostic at the line.
        /// </summary>
        public static SpecDocument Parse(string path, string text, SpecParseLimits limits)
        {
            if (text == null) throw new ArgumentNullException(nameof(text));
            if (limits == null) throw new ArgumentNullException(nameof(limits));
            var diags = new List<SpecDiagnostic>();
            try
            {
                // The representation model loads and converts recursively and shares aliased nodes, so the shape is checked
                // first on the (iterative) parser's events: nesting depth, and the node count with every alias expanded.
                var shape = CheckShape(path, text, limits);
                if (shape != null)
                {
                    diags.Add(shape);
                    return new SpecDocument(path, text, null, diags);
                }
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

        /// <summary>Walks the parser's events once; the diagnostic of the first nesting or expansion limit crossed, else null.</summary>
        static SpecDiagnostic? CheckShape(string path, string text, SpecParseLimits limits)
        {
            long budget = limits.MaxNodes(text.Length);
            long nodes = 0;
            var anchors = new Dictionary<string, (long Size, int Height)>(StringComparer.Ordinal);
            // Open lists and mappings: the anchor, the node count at the start, the tallest child so far.
            var open = new List<(string? Anchor, long Start, int Height)>();
            var parser = new Parser(new StringReader(text));
            ParsingEvent? last = null;
            while (true)
            {
                try
                {
                    if (!parser.MoveNext()) break;
                }
                catch (InvalidOperationException x)
                {
                    // YamlDotNet throws this (not a YamlException) on some malformed flow collections.
                    var at = last == null ? new SpecLocation(path, 1, 1) : Loc(path, last.End, last.End);
                    return new SpecDiagnostic(SpecDiagnosticIds.YamlSyntax, "YAML syntax error after here (" + x.Message.TrimEnd('.') + "); check that brackets and braces are closed", at);
                }
                var e = last = parser.Current!;
                long size;
                int height;
                string? anchor = e is NodeEvent n && !n.Anchor.IsEmpty ? n.Anchor.Value : null;
                switch (e)
                {
                    case SequenceStart _:
                    case MappingStart _:
                        if (open.Count + 1 > limits.MaxDepth)
                            return new SpecDiagnostic(SpecDiagnosticIds.YamlSyntax, "lists and mappings nest more than " + limits.MaxDepth + " levels deep here; a spec needs four", Loc(path, e.Start, e.End));
                        open.Add((anchor, nodes, 0));
                        nodes++;
                        if (nodes > budget) return TooMany(path, e, budget, limits);
                        continue;
                    case SequenceEnd _:
                    case MappingEnd _:
                    {
                        var top = open[open.Count - 1];
                        open.RemoveAt(open.Count - 1);
                        size = nodes - top.Start;
                        height = top.Height + 1;
                        if (top.Anchor != null) anchors[top.Anchor] = (size, height);
                        break;
                    }
                    case Scalar _:
                        size = 1;
                        height = 0;
                        nodes++;
                        if (anchor != null) anchors[anchor] = (1, 0);
                        break;
                    case AnchorAlias alias:
                        // An undefined alias is left to the loader, which reports it.
                        if (!anchors.TryGetValue(alias.Value.Value, out var target)) target = (1, 0);
                        size = target.Size;
                        height = target.Height;
                        if (open.Count + height > limits.MaxDepth)
                            return new SpecDiagnostic(SpecDiagnosticIds.YamlSyntax, "the alias *" + alias.Value.Value + " nests lists and mappings more than " + limits.MaxDepth + " levels deep here; a spec needs four", Loc(path, e.Start, e.End));
                        nodes += size;
                        break;
                    default:
                        continue; // stream and document boundaries, comments
                }
                if (nodes > budget) return TooMany(path, e, budget, limits);
                if (open.Count > 0)
                {
                    var parent = open[open.Count - 1];
                    if (height > parent.Height) open[open.Count - 1] = (parent.Anchor, parent.Start, height);
                }
            }
            return null;
        }

        static SpecDiagnostic TooMany(string path, ParsingEvent e, long budget, SpecParseLimits limits) =>
            new SpecDiagnostic(SpecDiagnosticIds.YamlSyntax,
                "the spec expands to more than " + budget + " YAML nodes by here (anchors and aliases count once per use; the limit is "
                + limits.NodesPerCharacter + " per character of the file, plus " + limits.MinNodes + "); a spec needs a few hundred: remove the aliases that repeat lists or mappings",
                Loc(path, e.Start, e.End));

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

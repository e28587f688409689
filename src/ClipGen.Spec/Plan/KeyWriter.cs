using System;
using System.Collections.Generic;
using System.Linq;

namespace ClipGen.Specs
{
    /// <summary>Whether a state_dict entry is a trainable parameter or a buffer (BatchNorm statistics).</summary>
    public enum KeyKind { Parameter, Buffer }

    /// <summary>One state_dict entry of a model: PyTorch key, shape and dtype.</summary>
    public sealed record KeyEntry(string Key, EquatableArray<long> Shape, string DType, KeyKind Kind)
    {
        public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
        public override string ToString() => Key + " [" + string.Join(",", Shape) + "] " + DType;
    }

    /// <summary>
    /// The published layouts of CLIP weights. A model's own state_dict keys are <see cref="OpenAI"/>'s (open_clip's <c>CLIP</c>
    /// class uses the same names); every other layout is a mapping of them, worked out by the blocks of <see cref="ClipPlan"/>.
    /// </summary>
    public enum WeightLayout
    {
        /// <summary>OpenAI's <c>state_dict()</c> names = open_clip's <c>CLIP</c> class = ClipGen's own keys.</summary>
        OpenAI,
        /// <summary>
        /// open_clip's own state_dict for the spec: <c>CLIP</c> (OpenAI's names), or <c>CustomTextCLIP</c> (<c>text.*</c>) when the spec
        /// sets <c>custom_text</c>, with the image tower under <c>visual.trunk.*</c> in timm's names when it sets <c>timm_model_name</c>.
        /// </summary>
        OpenClip,
        /// <summary>Hugging Face transformers: <c>CLIPModel</c>, or <c>SiglipModel</c> for a SigLIP-style spec.</summary>
        HuggingFace,
    }

    /// <summary>How the stored tensors of a layout make one model key.</summary>
    public enum KeyTransform
    {
        /// <summary>One tensor, as is.</summary>
        Same,
        /// <summary>One 2-D tensor, transposed (Hugging Face and timm store projections as <c>Linear</c> weights).</summary>
        Transpose,
        /// <summary>One tensor of another shape with the same elements in the same order (timm's <c>[1, N, W]</c> position embedding).</summary>
        Reshape,
        /// <summary>Several tensors concatenated along the first dimension (Hugging Face's q, k, v; timm's q and kv).</summary>
        Concat,
    }

    /// <summary>The tensors a layout stores for one model key: their names and shapes, and how they make the key.</summary>
    public sealed record KeySource(EquatableArray<string> Names, EquatableArray<EquatableArray<long>> Shapes, KeyTransform Transform)
    {
        public override string ToString() => string.Join(" + ", Names) + " (" + Transform + ")";
    }

    /// <summary>One model key and how each layout stores it (null where the layout cannot hold it).</summary>
    public sealed record PlannedKey(KeyEntry Entry, KeySource? OpenClip, KeySource? HuggingFace)
    {
        /// <summary>The source of this key in <paramref name="layout"/> (the key itself for OpenAI's), or null.</summary>
        public KeySource? In(WeightLayout layout)
        {
            switch (layout)
            {
                case WeightLayout.OpenAI: return new KeySource(new[] { Entry.Key }.ToEquatableArray(), new[] { Entry.Shape }.ToEquatableArray(), KeyTransform.Same);
                case WeightLayout.OpenClip: return OpenClip;
                default: return HuggingFace;
            }
        }
    }

    /// <summary>
    /// A block's name for one key in another naming style: a different local name, a transposed or reshaped tensor, several tensors,
    /// or none (the style cannot hold the key). A name starting with '/' is absolute (from the model's root).
    /// </summary>
    public sealed class Alt
    {
        Alt(string[] names, long[][]? shapes, KeyTransform transform, bool missing)
        {
            Names = names; Shapes = shapes; Transform = transform; Missing = missing;
        }

        internal string[] Names { get; }
        internal long[][]? Shapes { get; }
        internal KeyTransform Transform { get; }
        internal bool Missing { get; }

        /// <summary>The same tensor under another local name.</summary>
        public static Alt Name(string name) => new Alt(new[] { name }, null, KeyTransform.Same, false);
        /// <summary>The tensor transposed (2-D), under <paramref name="name"/>.</summary>
        public static Alt Transposed(string name) => new Alt(new[] { name }, null, KeyTransform.Transpose, false);
        /// <summary>The tensor viewed as <paramref name="shape"/>, under <paramref name="name"/>.</summary>
        public static Alt Reshaped(string name, params long[] shape) => new Alt(new[] { name }, new[] { shape }, KeyTransform.Reshape, false);
        /// <summary>The tensor split along its first dimension into parts of the given row counts, stored as <paramref name="names"/>.</summary>
        public static Alt Split(string[] names, long[] rows) => new Alt(names, rows.Select(r => new[] { r }).ToArray(), KeyTransform.Concat, false);
        /// <summary>The style has no such tensor: a model with this key cannot be stored in it.</summary>
        public static readonly Alt None = new Alt(Array.Empty<string>(), null, KeyTransform.Same, true);
    }

    /// <summary>
    /// Collects a model's keys while its plan's blocks describe themselves: the model's own (OpenAI) name and shape of every
    /// parameter and buffer, in PyTorch's state_dict order, and at the same time its name in open_clip's and Hugging Face's layouts.
    /// Blocks enter scopes (a submodule's attribute name in each style) and declare their tensors with local names.
    /// </summary>
    public sealed class KeyWriter
    {
        sealed class Frame
        {
            public string Canonical = "", OpenClip = "", Hf = "";
            public bool HfMissing, OpenClipMissing, Timm;
        }

        readonly List<Frame> _stack = new List<Frame> { new Frame() };
        readonly List<PlannedKey> _keys = new List<PlannedKey>();

        public IReadOnlyList<PlannedKey> Keys => _keys;

        Frame Top => _stack[_stack.Count - 1];

        /// <summary>
        /// Enters a submodule: <paramref name="canonical"/> is its attribute name in ClipGen's (OpenAI's) names, <paramref name="timm"/>
        /// its name in timm's ViT (used for open_clip's layout inside a timm tower; null = the same), <paramref name="hf"/> its name in
        /// Hugging Face's (null = the same). An empty name adds no segment.
        /// </summary>
        public IDisposable Scope(string canonical, string? timm = null, string? hf = null)
        {
            var t = Top;
            var f = new Frame
            {
                Canonical = Join(t.Canonical, canonical),
                OpenClip = Join(t.OpenClip, t.Timm ? (timm ?? canonical) : canonical),
                Hf = Join(t.Hf, hf ?? canonical),
                HfMissing = t.HfMissing, OpenClipMissing = t.OpenClipMissing, Timm = t.Timm,
            };
            return Push(f);
        }

        /// <summary>
        /// Enters a scope whose segment is given per layout (a tower's root): <paramref name="openClip"/> for open_clip's layout,
        /// <paramref name="hf"/> for Hugging Face's (null: the layout has no such tower, so nothing inside can be stored in it).
        /// <paramref name="timm"/> switches open_clip's names inside to timm's.
        /// </summary>
        public IDisposable Tower(string canonical, string openClip, string? hf, bool timm = false)
        {
            var t = Top;
            var f = new Frame
            {
                Canonical = Join(t.Canonical, canonical),
                OpenClip = Join(t.OpenClip, openClip),
                Hf = Join(t.Hf, hf ?? ""),
                HfMissing = t.HfMissing || hf == null, OpenClipMissing = t.OpenClipMissing, Timm = timm,
            };
            return Push(f);
        }

        /// <summary>A float32 parameter.</summary>
        public void Param(string name, long[] shape, Alt? timm = null, Alt? hf = null) => Add(name, shape, "float32", KeyKind.Parameter, timm, hf);

        /// <summary>A buffer (BatchNorm statistics); <paramref name="dtype"/> float32 or int64.</summary>
        public void Buffer(string name, long[] shape, string dtype) => Add(name, shape, dtype, KeyKind.Buffer, null, Alt.None);

        void Add(string name, long[] shape, string dtype, KeyKind kind, Alt? timm, Alt? hf)
        {
            var f = Top;
            var entry = new KeyEntry(Join(f.Canonical, name), shape.ToEquatableArray(), dtype, kind);
            var openClip = f.OpenClipMissing ? null : Source(f.OpenClip, name, shape, f.Timm ? timm : null);
            var hfSource = f.HfMissing ? null : Source(f.Hf, name, shape, hf);
            _keys.Add(new PlannedKey(entry, openClip, hfSource));
        }

        static KeySource? Source(string prefix, string name, long[] shape, Alt? alt)
        {
            if (alt == null) return One(Join(prefix, name), shape, KeyTransform.Same);
            if (alt.Missing) return null;
            switch (alt.Transform)
            {
                case KeyTransform.Same: return One(Resolve(prefix, alt.Names[0]), shape, KeyTransform.Same);
                case KeyTransform.Transpose:
                    if (shape.Length != 2) throw new InvalidOperationException("a transposed key must be 2-D: " + name);
                    return One(Resolve(prefix, alt.Names[0]), new[] { shape[1], shape[0] }, KeyTransform.Transpose);
                case KeyTransform.Reshape:
                    if (alt.Shapes![0].Aggregate(1L, (a, b) => a * b) != shape.Aggregate(1L, (a, b) => a * b))
                        throw new InvalidOperationException("a reshaped key must keep its element count: " + name);
                    return One(Resolve(prefix, alt.Names[0]), alt.Shapes[0], KeyTransform.Reshape);
                default:
                {
                    var rows = alt.Shapes!.Select(s => s[0]).ToArray();
                    if (rows.Sum() != shape[0]) throw new InvalidOperationException("split parts must add up to the key's rows: " + name);
                    var shapes = rows.Select(r => new[] { r }.Concat(shape.Skip(1)).ToEquatableArray()).ToEquatableArray();
                    return new KeySource(alt.Names.Select(n => Resolve(prefix, n)).ToEquatableArray(), shapes, KeyTransform.Concat);
                }
            }
        }

        static KeySource One(string name, long[] shape, KeyTransform t) =>
            new KeySource(new[] { name }.ToEquatableArray(), new[] { shape.ToEquatableArray() }.ToEquatableArray(), t);

        static string Resolve(string prefix, string name) => name.StartsWith("/", StringComparison.Ordinal) ? name.Substring(1) : Join(prefix, name);

        static string Join(string a, string b) => a.Length == 0 ? b : b.Length == 0 ? a : a + "." + b;

        IDisposable Push(Frame f)
        {
            _stack.Add(f);
            return new Pop(this, _stack.Count);
        }

        sealed class Pop : IDisposable
        {
            readonly KeyWriter _w;
            readonly int _depth;
            bool _done;
            public Pop(KeyWriter w, int depth) { _w = w; _depth = depth; }
            public void Dispose()
            {
                if (_done) return;
                _done = true;
                if (_w._stack.Count != _depth) throw new InvalidOperationException("key scopes must be left in reverse order");
                _w._stack.RemoveAt(_w._stack.Count - 1);
            }
        }
    }
}

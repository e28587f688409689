using System;
using System.Collections.Generic;
using System.Linq;

namespace ClipGen.Specs
{
    /// <summary>A two-way table between an enum and the words that spell it in specs, configs and metadata.</summary>
    public sealed class WordTable<T> where T : struct, Enum
    {
        readonly (string Word, T Value)[] _pairs;

        public WordTable(params (string Word, T Value)[] pairs) { _pairs = pairs; }

        /// <summary>Every word, in declaration order (for "must be one of …" messages and the JSON schema).</summary>
        public string[] Words => _pairs.Select(p => p.Word).ToArray();

        /// <summary>The word of a value.</summary>
        public string this[T value]
        {
            get
            {
                foreach (var p in _pairs) if (EqualityComparer<T>.Default.Equals(p.Value, value)) return p.Word;
                throw new ArgumentOutOfRangeException(nameof(value), value, "no word for " + typeof(T).Name + "." + value);
            }
        }

        /// <summary>The value of a word, if it is one.</summary>
        public bool TryParse(string word, out T value)
        {
            foreach (var p in _pairs)
                if (p.Word == word) { value = p.Value; return true; }
            value = default;
            return false;
        }

        /// <summary>The value of a word; throws for an unknown word.</summary>
        public T Parse(string word) => TryParse(word, out var v) ? v
            : throw new ArgumentException("'" + word + "' is not one of " + string.Join(", ", Words));
    }

    /// <summary>
    /// Every enum of the spec format and the word that spells it: the one table used by the resolver, the YAML writer, the
    /// converters' configs, ONNX metadata, the CLI and the JSON schema test.
    /// </summary>
    public static class SpecWords
    {
        public static readonly WordTable<ActivationKind> Activation = new WordTable<ActivationKind>(
            ("quick_gelu", ActivationKind.QuickGelu), ("gelu", ActivationKind.Gelu), ("gelu_tanh", ActivationKind.GeluTanh));

        public static readonly WordTable<TextPooling> TextPooling = new WordTable<TextPooling>(
            ("argmax", Specs.TextPooling.Argmax), ("eos", Specs.TextPooling.Eos), ("last", Specs.TextPooling.Last),
            ("first", Specs.TextPooling.First), ("mean", Specs.TextPooling.Mean));

        public static readonly WordTable<VisionPooling> VisionPooling = new WordTable<VisionPooling>(
            ("class_token", Specs.VisionPooling.ClassToken), ("mean", Specs.VisionPooling.Mean), ("attention", Specs.VisionPooling.Attention));

        public static readonly WordTable<ProjectionKind> Projection = new WordTable<ProjectionKind>(
            ("linear", ProjectionKind.Linear), ("none", ProjectionKind.None));

        public static readonly WordTable<LossKind> Loss = new WordTable<LossKind>(("clip", LossKind.Clip), ("siglip", LossKind.SigLip));

        public static readonly WordTable<InterpolationKind> Interpolation = new WordTable<InterpolationKind>(
            ("bicubic", InterpolationKind.Bicubic), ("bilinear", InterpolationKind.Bilinear));

        public static readonly WordTable<ResizeModeKind> ResizeMode = new WordTable<ResizeModeKind>(
            ("shortest", ResizeModeKind.Shortest), ("longest", ResizeModeKind.Longest), ("squash", ResizeModeKind.Squash));

        public static readonly WordTable<VisionKind> VisionKind = new WordTable<VisionKind>(
            ("vit", Specs.VisionKind.VisionTransformer), ("resnet", Specs.VisionKind.ModifiedResNet));

        /// <summary>A human name of an activation for messages (<c>QuickGELU</c>, <c>GELU</c>, <c>GELU (tanh)</c>).</summary>
        public static string Display(ActivationKind a) => a == ActivationKind.QuickGelu ? "QuickGELU" : a == ActivationKind.Gelu ? "GELU" : "GELU (tanh)";
    }
}

using System;

namespace ClipGen.Specs
{
    /// <summary>The kind of image tower.</summary>
    public enum VisionKind
    {
        /// <summary>Vision transformer (patch embedding, class token, transformer). <c>layers</c> is one int.</summary>
        VisionTransformer,
        /// <summary>OpenAI's ModifiedResNet (3-conv stem, anti-aliased strides, attention pooling). <c>layers</c> is four ints.</summary>
        ModifiedResNet,
    }

    /// <summary>The MLP activation. Not recorded in the weights, so always explicit.</summary>
    public enum ActivationKind
    {
        /// <summary><c>x * sigmoid(1.702 x)</c>: every OpenAI checkpoint.</summary>
        QuickGelu,
        /// <summary>Exact (erf) GELU: open_clip's models trained without <c>quick_gelu</c>.</summary>
        Gelu,
    }

    /// <summary>How the text tower picks the pooled token.</summary>
    public enum TextPooling
    {
        /// <summary>The position of the largest token id (the end token in CLIP's vocabulary), as OpenAI does.</summary>
        Argmax,
        /// <summary>The first position holding <c>eos_id</c> (Hugging Face's newer rule).</summary>
        Eos,
    }

    /// <summary>Resampling filter of the image preprocessing.</summary>
    public enum InterpolationKind { Bicubic, Bilinear }

    /// <summary>How an image is brought to the square input size.</summary>
    public enum ResizeModeKind
    {
        /// <summary>Resize the shortest side, then centre-crop (OpenAI).</summary>
        Shortest,
        /// <summary>Resize the longest side, then pad with the fill colour (open_clip <c>longest</c>).</summary>
        Longest,
        /// <summary>Resize both sides to the input size, ignoring the aspect ratio.</summary>
        Squash,
    }

    /// <summary>The training loss a spec is trained with.</summary>
    public enum LossKind
    {
        /// <summary>CLIP's symmetric InfoNCE.</summary>
        Clip,
        /// <summary>SigLIP's pairwise sigmoid loss with a learnable logit bias.</summary>
        SigLip,
    }

    /// <summary>The image tower's hyper-parameters, as written in the spec (open_clip's <c>vision_cfg</c> names).</summary>
    public sealed record VisionSpec
    {
        /// <summary>Tower kind, derived from <c>layers</c>: one int is a ViT, four ints a ModifiedResNet.</summary>
        public VisionKind Kind { get; init; }
        /// <summary>Input resolution in pixels (square).</summary>
        public int ImageSize { get; init; }
        /// <summary>Patch size (ViT only; 0 for a ResNet).</summary>
        public int PatchSize { get; init; }
        /// <summary>Transformer width (ViT) or stem width (ResNet; the attention pool works at width·32).</summary>
        public int Width { get; init; }
        /// <summary>Transformer depth (one entry) or the four ResNet stage depths.</summary>
        public EquatableArray<int> Layers { get; init; } = EquatableArray<int>.Empty;
        /// <summary>Width of one attention head. Heads = width / head_width (ViT) or width·32 / head_width (ResNet attention pool).</summary>
        public int HeadWidth { get; init; }
        /// <summary>MLP width = int(width · mlp_ratio) (ViT only).</summary>
        public double MlpRatio { get; init; }
    }

    /// <summary>The text tower's hyper-parameters (open_clip's <c>text_cfg</c> names).</summary>
    public sealed record TextSpec
    {
        /// <summary>Maximum number of tokens, start and end tokens included.</summary>
        public int ContextLength { get; init; }
        /// <summary>Token vocabulary size.</summary>
        public int VocabSize { get; init; }
        /// <summary>Transformer width.</summary>
        public int Width { get; init; }
        /// <summary>Attention heads (explicit in the text tower, as in OpenAI's configs).</summary>
        public int Heads { get; init; }
        /// <summary>Transformer depth.</summary>
        public int Layers { get; init; }
        /// <summary>MLP width = int(width · mlp_ratio).</summary>
        public double MlpRatio { get; init; }
        /// <summary>Which token the tower pools.</summary>
        public TextPooling Pooling { get; init; }
        /// <summary>End-of-text token id (used by <see cref="TextPooling.Eos"/> and by tokenizers).</summary>
        public int EosId { get; init; }
        /// <summary>Padding token id.</summary>
        public int PadId { get; init; }
    }

    /// <summary>Tokenizer selection.</summary>
    public sealed record TokenizerSpec
    {
        /// <summary>
        /// <c>clip_bpe</c> (OpenAI's byte-level BPE, needs the vocabulary file), <c>bytes</c> (UTF-8 bytes, no file),
        /// <c>sentencepiece</c> (a SentencePiece model file, SigLIP's) or <c>wordpiece</c> (a BERT <c>vocab.txt</c>, CLIPA's).
        /// </summary>
        public string Kind { get; init; } = "";
        /// <summary>
        /// The vocabulary file's name (e.g. <c>spiece.model</c>, <c>vocab.txt</c>): the file downloaded beside the weights, or
        /// looked for next to them. Empty for <c>bytes</c>; empty for <c>clip_bpe</c> means OpenAI's file name (<see cref="SpecDefaults.ClipBpeFile"/>).
        /// </summary>
        public string File { get; init; } = "";
        /// <summary>
        /// open_clip's text cleaning before encoding (<c>tokenizer_kwargs.clean</c>): <c>canonicalize</c>, <c>lower</c> or
        /// <c>whitespace</c>. Only for <c>sentencepiece</c> and <c>wordpiece</c> (default <c>whitespace</c>, as open_clip's
        /// HFTokenizer); <c>clip_bpe</c> always cleans as OpenAI does, and the spec leaves it empty.
        /// </summary>
        public string Clean { get; init; } = "";
        /// <summary>WordPiece only: replace the separator token ([SEP]) by 0 after encoding, as open_clip's <c>strip_sep_token</c>.</summary>
        public bool StripSepToken { get; init; }
    }

    /// <summary>Image preprocessing, as open_clip's <c>preprocess_cfg</c>.</summary>
    public sealed record PreprocessSpec
    {
        /// <summary>Output size; defaults to the vision tower's image size.</summary>
        public int ImageSize { get; init; }
        /// <summary>Per-channel mean (RGB), applied after scaling to [0,1].</summary>
        public EquatableArray<double> Mean { get; init; } = EquatableArray<double>.Empty;
        /// <summary>Per-channel standard deviation (RGB).</summary>
        public EquatableArray<double> Std { get; init; } = EquatableArray<double>.Empty;
        /// <summary>Resampling filter.</summary>
        public InterpolationKind Interpolation { get; init; }
        /// <summary>How the image is brought to a square.</summary>
        public ResizeModeKind ResizeMode { get; init; }
        /// <summary>Fill colour (0–255) for <see cref="ResizeModeKind.Longest"/>.</summary>
        public int FillColor { get; init; }
    }

    /// <summary>
    /// A published checkpoint of this architecture: where to download it and its sha256. Either a direct <see cref="Url"/>, or a
    /// Hugging Face Hub file (<see cref="Repo"/>, <see cref="File"/>, <see cref="Revision"/>), whose <see cref="Url"/> is the Hub's
    /// resolve URL and whose sha256, when the spec pins none, is the one the Hub reports for the file.
    /// </summary>
    public sealed record PretrainedSpec
    {
        /// <summary>Source name (<c>openai</c>, <c>hf</c>, …).</summary>
        public string Source { get; init; } = "";
        /// <summary>Download URL (for a Hub file: <c>https://huggingface.co/&lt;repo&gt;/resolve/&lt;revision&gt;/&lt;file&gt;</c>).</summary>
        public string Url { get; init; } = "";
        /// <summary>Hugging Face Hub repository (<c>owner/name</c>), or empty for a direct URL.</summary>
        public string Repo { get; init; } = "";
        /// <summary>Path of the file in <see cref="Repo"/>, or empty.</summary>
        public string File { get; init; } = "";
        /// <summary>Branch, tag or commit of <see cref="Repo"/> (default <c>main</c>), or empty for a direct URL.</summary>
        public string Revision { get; init; } = "";
        /// <summary>Expected sha256 of the file (64 hex digits), or empty when the spec pins none.</summary>
        public string Sha256 { get; init; } = "";
        /// <summary>File layout: <c>torchscript</c>, <c>safetensors</c>, <c>torch</c> (OpenAI names), <c>hf</c> (CLIPModel), <c>open_clip</c>.</summary>
        public string Format { get; init; } = "";
        /// <summary>True for a Hugging Face Hub file (<see cref="Repo"/> set).</summary>
        public bool IsHub => Repo.Length > 0;
    }

    /// <summary>
    /// A fully resolved architecture spec: every default filled in, <c>extends</c> applied. Plain data with value
    /// equality (no YAML nodes, no locations), so the generator can cache on it.
    /// </summary>
    public sealed record ClipSpec
    {
        /// <summary>The spec's name, open_clip's config name (e.g. <c>ViT-B-32-quickgelu</c>).</summary>
        public string Name { get; init; } = "";
        /// <summary>Other names that select this spec (e.g. OpenAI's <c>ViT-B/32</c>).</summary>
        public EquatableArray<string> Aliases { get; init; } = EquatableArray<string>.Empty;
        /// <summary>The spec this one extends, if any (informational; already applied).</summary>
        public string Extends { get; init; } = "";
        /// <summary>The C# class name of the generated model.</summary>
        public string ClassName { get; init; } = "";
        /// <summary>Joint embedding width.</summary>
        public int EmbedDim { get; init; }
        /// <summary>MLP activation of both towers.</summary>
        public ActivationKind Activation { get; init; }
        /// <summary>Initial value of <c>logit_scale</c> (ln(1/0.07) by default).</summary>
        public double InitLogitScale { get; init; }
        /// <summary>Initial value of the SigLIP logit bias (only with <see cref="LossKind.SigLip"/>).</summary>
        public double InitLogitBias { get; init; }
        /// <summary>Training loss.</summary>
        public LossKind Loss { get; init; }
        public VisionSpec Vision { get; init; } = new VisionSpec();
        public TextSpec Text { get; init; } = new TextSpec();
        public TokenizerSpec Tokenizer { get; init; } = new TokenizerSpec();
        public PreprocessSpec Preprocess { get; init; } = new PreprocessSpec();
        /// <summary>Published checkpoints.</summary>
        public EquatableArray<PretrainedSpec> Pretrained { get; init; } = EquatableArray<PretrainedSpec>.Empty;

        // Derived values (the planner's view).

        /// <summary>Attention heads of the image tower (ViT blocks or ResNet attention pool).</summary>
        public int VisionHeads => Vision.Kind == VisionKind.VisionTransformer
            ? Vision.Width / Vision.HeadWidth
            : Vision.Width * 32 / Vision.HeadWidth;

        /// <summary>ViT patch grid side (image_size / patch_size), or the ResNet's final feature map side (image_size / 32).</summary>
        public int VisionGrid => Vision.Kind == VisionKind.VisionTransformer ? Vision.ImageSize / Vision.PatchSize : Vision.ImageSize / 32;

        /// <summary>ViT MLP width.</summary>
        public int VisionMlpWidth => (int)(Vision.Width * Vision.MlpRatio);

        /// <summary>Text MLP width.</summary>
        public int TextMlpWidth => (int)(Text.Width * Text.MlpRatio);

        /// <summary>The ResNet's output channels (width·32), the attention pool's embedding.</summary>
        public int ResNetEmbedWidth => Vision.Width * 32;
    }
}

using System;

namespace ClipGen.Specs
{
    /// <summary>The kind of image tower.</summary>
    public enum VisionKind
    {
        /// <summary>Vision transformer (patch embedding, optional class token, transformer, pooling). <c>layers</c> is one int.</summary>
        VisionTransformer,
        /// <summary>OpenAI's ModifiedResNet (3-conv stem, anti-aliased strides, attention pooling). <c>layers</c> is four ints.</summary>
        ModifiedResNet,
    }

    /// <summary>An MLP activation. Not recorded in the weights, so always explicit.</summary>
    public enum ActivationKind
    {
        /// <summary><c>x * sigmoid(1.702 x)</c>: every OpenAI checkpoint (<c>quick_gelu</c>).</summary>
        QuickGelu,
        /// <summary>Exact (erf) GELU: open_clip's models trained without <c>quick_gelu</c>, timm's ViTs (<c>gelu</c>).</summary>
        Gelu,
        /// <summary>GELU with the tanh approximation (<c>gelu_tanh</c>: PyTorch's <c>GELU(approximate='tanh')</c>, SigLIP 2's text tower).</summary>
        GeluTanh,
    }

    /// <summary>How the text tower pools its tokens into one vector.</summary>
    public enum TextPooling
    {
        /// <summary>The position of the largest token id (the end token in CLIP's vocabulary), as OpenAI does (<c>argmax</c>).</summary>
        Argmax,
        /// <summary>The first position holding <c>eos_id</c> (Hugging Face's rule, open_clip's <c>eos</c>).</summary>
        Eos,
        /// <summary>The last position of the context (open_clip's <c>last</c>: SigLIP, CLIPA).</summary>
        Last,
        /// <summary>The first position (open_clip's <c>first</c>).</summary>
        First,
        /// <summary>The mean over all positions (<c>mean</c>).</summary>
        Mean,
    }

    /// <summary>How a ViT pools its tokens into one vector.</summary>
    public enum VisionPooling
    {
        /// <summary>The class token (OpenAI; open_clip's <c>tok</c>).</summary>
        ClassToken,
        /// <summary>The mean of the patch tokens, the class token excluded (CLIPA; open_clip's <c>avg</c>).</summary>
        Mean,
        /// <summary>
        /// A learned latent query attends over the tokens, then a LayerNorm and an MLP residual: SigLIP's "MAP" head
        /// (timm's <c>AttentionPoolLatent</c>, Hugging Face's <c>SiglipMultiheadAttentionPoolingHead</c>).
        /// </summary>
        Attention,
    }

    /// <summary>A tower's output projection.</summary>
    public enum ProjectionKind
    {
        /// <summary>A learned matrix (a Linear with <c>proj_bias</c> in the text tower).</summary>
        Linear,
        /// <summary>No projection: the tower's width is the embedding width.</summary>
        None,
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
        /// <summary>Resize both sides to the input size, ignoring the aspect ratio (SigLIP).</summary>
        Squash,
    }

    /// <summary>The training loss a spec is trained with; it also decides how zero-shot probabilities are computed.</summary>
    public enum LossKind
    {
        /// <summary>CLIP's symmetric InfoNCE: zero-shot probabilities are a softmax over the labels.</summary>
        Clip,
        /// <summary>SigLIP's pairwise sigmoid loss with a learnable logit bias: each label's probability is its own sigmoid.</summary>
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
        /// <summary>The MLP activation of this tower (the spec's <c>activation</c> unless the tower sets its own).</summary>
        public ActivationKind Activation { get; init; }
        /// <summary>ViT: how the tokens are pooled (<c>pool</c>).</summary>
        public VisionPooling Pool { get; init; }
        /// <summary>ViT: a learned class token is prepended to the patches (<c>class_token</c>).</summary>
        public bool ClassToken { get; init; } = true;
        /// <summary>ViT: the patch-embedding convolution has a bias (<c>patch_bias</c>; timm's ViTs).</summary>
        public bool PatchBias { get; init; }
        /// <summary>ViT: a LayerNorm before the transformer (<c>ln_pre</c>; open_clip's <c>no_ln_pre</c> turns it off).</summary>
        public bool LnPre { get; init; } = true;
        /// <summary>ViT: <c>ln_post</c> is applied to the pooled vector instead of to every token before pooling (<c>final_ln_after_pool</c>).</summary>
        public bool FinalLnAfterPool { get; init; }
        /// <summary>ViT: LayerScale's initial value in every residual block (open_clip's <c>ls_init_value</c>), or null for none.</summary>
        public double? LayerScale { get; init; }
        /// <summary>The epsilon of every LayerNorm of the tower (<c>norm_eps</c>).</summary>
        public double NormEps { get; init; } = SpecDefaults.NormEps;
        /// <summary>ViT: the output projection (<c>proj</c>); <see cref="ProjectionKind.None"/> needs width = embed_dim.</summary>
        public ProjectionKind Proj { get; init; }
        /// <summary>
        /// The timm model this tower is in open_clip's configs (<c>timm_model_name</c>, e.g. <c>vit_base_patch16_siglip_224</c>), or empty.
        /// When set, open_clip stores the tower under <c>visual.trunk.*</c> with timm's names; the architecture is still the fields above.
        /// </summary>
        public string TimmModelName { get; init; } = "";
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
        /// <summary>Which token(s) the tower pools.</summary>
        public TextPooling Pooling { get; init; }
        /// <summary>End-of-text token id (used by <see cref="TextPooling.Eos"/> and by tokenizers).</summary>
        public int EosId { get; init; }
        /// <summary>Padding token id.</summary>
        public int PadId { get; init; }
        /// <summary>The MLP activation of this tower (the spec's <c>activation</c> unless the tower sets its own).</summary>
        public ActivationKind Activation { get; init; }
        /// <summary>Each token attends only to itself and earlier ones (<c>causal_mask</c>; open_clip's <c>no_causal_mask</c> turns it off).</summary>
        public bool CausalMask { get; init; } = true;
        /// <summary>The output projection (<c>proj</c>); <see cref="ProjectionKind.None"/> needs width = embed_dim.</summary>
        public ProjectionKind Proj { get; init; }
        /// <summary>The projection is a Linear with a bias (<c>proj_bias</c>; stored as <c>text_projection.weight</c>/<c>.bias</c>).</summary>
        public bool ProjBias { get; init; }
        /// <summary>The epsilon of every LayerNorm of the tower (<c>norm_eps</c>).</summary>
        public double NormEps { get; init; } = SpecDefaults.NormEps;
        /// <summary>LayerScale's initial value in every residual block, or null for none.</summary>
        public double? LayerScale { get; init; }
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
        /// <summary>File layout: <c>torchscript</c>, <c>safetensors</c>, <c>torch</c> (OpenAI names), <c>hf</c> (CLIPModel / SiglipModel), <c>open_clip</c>.</summary>
        public string Format { get; init; } = "";
        /// <summary>
        /// The tokenizer's vocabulary file in <see cref="Repo"/> (e.g. <c>spiece.model</c>), downloaded with the weights and saved under
        /// the spec's <c>tokenizer.file</c> name; empty when the weights come without one.
        /// </summary>
        public string TokenizerFile { get; init; } = "";
        /// <summary>True for a Hugging Face Hub file (<see cref="Repo"/> set).</summary>
        public bool IsHub => Repo.Length > 0;
    }

    /// <summary>
    /// A fully resolved architecture spec: every default filled in, <c>extends</c> applied. Plain data with value
    /// equality (no YAML nodes, no locations), so the generator can cache on it. Numbers derived from it (heads, widths,
    /// key names) are worked out once, by <see cref="ClipPlan.From"/>.
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
        /// <summary>
        /// The spec's <c>activation</c>, which is the text tower's (<see cref="TextSpec.Activation"/>); the image tower's is
        /// <see cref="VisionSpec.Activation"/>. Set the towers' to change it.
        /// </summary>
        public ActivationKind Activation => Text.Activation;
        /// <summary>Initial value of <c>logit_scale</c> (ln(1/0.07) by default).</summary>
        public double InitLogitScale { get; init; }
        /// <summary>Initial value of the SigLIP logit bias (only with <see cref="LossKind.SigLip"/>).</summary>
        public double InitLogitBias { get; init; }
        /// <summary>Training loss.</summary>
        public LossKind Loss { get; init; }
        /// <summary>
        /// open_clip's <c>custom_text</c>: open_clip stores this model as <c>CustomTextCLIP</c>, the text tower under <c>text.*</c>
        /// (SigLIP). Only the open_clip layout changes.
        /// </summary>
        public bool CustomText { get; init; }
        public VisionSpec Vision { get; init; } = new VisionSpec();
        public TextSpec Text { get; init; } = new TextSpec();
        public TokenizerSpec Tokenizer { get; init; } = new TokenizerSpec();
        public PreprocessSpec Preprocess { get; init; } = new PreprocessSpec();
        /// <summary>Published checkpoints.</summary>
        public EquatableArray<PretrainedSpec> Pretrained { get; init; } = EquatableArray<PretrainedSpec>.Empty;
    }
}

using System;

namespace ClipGen.Specs
{
    /// <summary>Every default of the spec format, in one place. docs/spec-format.md and the JSON schema repeat them.</summary>
    public static class SpecDefaults
    {
        /// <summary>vision.head_width: 64, OpenAI's fixed head width.</summary>
        public const int VisionHeadWidth = 64;
        /// <summary>vision.mlp_ratio and text.mlp_ratio: 4.</summary>
        public const double MlpRatio = 4.0;
        /// <summary>text.pooling: argmax (OpenAI).</summary>
        public const TextPooling TextPooling = Specs.TextPooling.Argmax;
        /// <summary>text.eos_id: CLIP's end-of-text token 49407.</summary>
        public const int EosId = 49407;
        /// <summary>
        /// text.eos_id of a tokenizer kind: CLIP's 49407 (<c>clip_bpe</c>; also <c>bytes</c> unless set), SentencePiece's
        /// <c>&lt;/s&gt;</c> 1 (T5 and Gemma vocabularies, SigLIP), BERT's [SEP] 102 (<c>wordpiece</c>, CLIPA).
        /// </summary>
        public static int EosIdOf(string tokenizerKind) =>
            tokenizerKind == "sentencepiece" ? 1 : tokenizerKind == "wordpiece" ? 102 : EosId;

        /// <summary>text.pad_id: 0, as <c>clip.tokenize</c> pads (and BERT's [PAD], Gemma's &lt;pad&gt;; T5's SentencePiece specs set 1).</summary>
        public const int PadId = 0;
        /// <summary>vision.norm_eps and text.norm_eps: 1e-5, PyTorch's LayerNorm default (OpenAI, open_clip; timm's ViTs use 1e-6).</summary>
        public const double NormEps = 1e-5;
        /// <summary>loss: clip.</summary>
        public const LossKind Loss = LossKind.Clip;
        /// <summary>init_logit_bias: -10, SigLIP's initial bias (used only with loss: siglip).</summary>
        public const double InitLogitBias = -10.0;
        /// <summary>tokenizer.clean of the sentencepiece and wordpiece kinds: whitespace (open_clip's HFTokenizer default).</summary>
        public const string TokenizerClean = "whitespace";
        /// <summary>tokenizer.file of clip_bpe: OpenAI's merges file.</summary>
        public const string ClipBpeFile = "bpe_simple_vocab_16e6.txt.gz";
        /// <summary>preprocess.fill_color: 0.</summary>
        public const int FillColor = 0;

        /// <summary>
        /// The largest value a spec's size field may take. Far above every published model (ViT-bigG: 48 layers, width 1664;
        /// SigLIP 2: vocabulary 256,000), low enough that a typo cannot plan a model of millions of layers. The memory a model may
        /// take is checked separately, when it is built.
        /// </summary>
        public static int Maximum(string key)
        {
            switch (key)
            {
                case "layers": return 1024;
                case "heads": return 4096;
                case "patch_size": return 1024;
                case "image_size": return 16384;
                case "vocab_size": return 1 << 24;
                case "fill_color": return 255;
                default: return 1 << 20; // widths, head_width, embed_dim, context_length, token ids
            }
        }

        /// <summary>ln(1/0.07), CLIP's initial logit scale.</summary>
        public static readonly double ClipInitLogitScale = Math.Log(1 / 0.07);
        /// <summary>OpenAI's image mean (RGB).</summary>
        public static readonly double[] OpenAIMean = { 0.48145466, 0.4578275, 0.40821073 };
        /// <summary>OpenAI's image standard deviation (RGB).</summary>
        public static readonly double[] OpenAIStd = { 0.26862954, 0.26130258, 0.27577711 };
    }
}

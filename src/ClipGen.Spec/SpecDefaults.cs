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
        /// <summary>text.pad_id: 0, as <c>clip.tokenize</c> pads.</summary>
        public const int PadId = 0;
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

        /// <summary>ln(1/0.07), CLIP's initial logit scale.</summary>
        public static readonly double ClipInitLogitScale = Math.Log(1 / 0.07);
        /// <summary>OpenAI's image mean (RGB).</summary>
        public static readonly double[] OpenAIMean = { 0.48145466, 0.4578275, 0.40821073 };
        /// <summary>OpenAI's image standard deviation (RGB).</summary>
        public static readonly double[] OpenAIStd = { 0.26862954, 0.26130258, 0.27577711 };
    }
}

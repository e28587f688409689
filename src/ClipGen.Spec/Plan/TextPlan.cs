namespace ClipGen.Specs
{
    /// <summary>
    /// The text tower: <c>token_embedding</c>, <c>positional_embedding</c>, the transformer (causal or not), <c>ln_final</c>,
    /// pooling, and the projection: none, a matrix <c>text_projection</c> [W, E], or a Linear with a bias
    /// (<c>text_projection.weight</c> [E, W], <c>.bias</c>). Its keys sit at the model's root, as in OpenAI's CLIP
    /// (open_clip's <c>CustomTextCLIP</c> puts them under <c>text.</c>, Hugging Face under <c>text_model.</c>).
    /// Token rows shorter than the context are padded with <see cref="PadId"/> to the full context, as the tokenizers do, so that
    /// every backend sees the same sequence (padding matters to a non-causal tower and to last / mean pooling).
    /// </summary>
    public sealed record TextPlan(
        int ContextLength, int VocabSize, int Width, TransformerPlan Transformer, LayerNormPlan LnFinal, TextPooling Pooling,
        int EosId, int PadId, ProjectionKind Proj, bool ProjBias, int OutputDim)
    {
        public bool Causal => Transformer.Block.Attention.Causal;
        public int Heads => Transformer.Block.Attention.Heads;

        /// <summary>The tower's own parameters, which PyTorch lists before the model's other entries (OpenAI's order).</summary>
        public void WriteParameters(KeyWriter w, HfFamily hf)
        {
            w.Param("positional_embedding", new long[] { ContextLength, Width }, hf: Alt.Name("embeddings.position_embedding.weight"));
            if (Proj == ProjectionKind.Linear && !ProjBias)
                w.Param("text_projection", new long[] { Width, OutputDim }, hf: hf == HfFamily.Clip ? Alt.Transposed("/text_projection.weight") : Alt.None);
        }

        /// <summary>The tower's submodules, listed after the image tower.</summary>
        public void WriteModules(KeyWriter w, HfFamily hf)
        {
            using (w.Scope("transformer", hf: "encoder")) Transformer.WriteKeys(w);
            using (w.Scope("token_embedding", hf: "embeddings.token_embedding")) w.Param("weight", new long[] { VocabSize, Width });
            using (w.Scope("ln_final", hf: "final_layer_norm")) LnFinal.WriteKeys(w);
            if (Proj == ProjectionKind.Linear && ProjBias)
            {
                using (w.Scope("text_projection", hf: "head"))
                {
                    w.Param("weight", new long[] { OutputDim, Width }, hf: hf == HfFamily.Siglip ? null : Alt.None);
                    w.Param("bias", new long[] { OutputDim }, hf: hf == HfFamily.Siglip ? null : Alt.None);
                }
            }
        }
    }
}

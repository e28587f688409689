using ClipGen.Specs;

namespace ClipGen.Generators.Model
{
    /// <summary>One spec file's path and text: the first, equatable step of the pipeline.</summary>
    internal sealed record SpecFile(string Path, string Text, bool Library = false);

    /// <summary>Everything the emitter needs for one model. Plain data: no YAML nodes, symbols or locations.</summary>
    internal sealed record ModelToEmit(ClipSpec Spec, ModelFacts Facts, EquatableArray<KeyEntry> Keys, string SourceFileName);

    /// <summary>The numbers of a model's plan that its generated class states as constants, and a one-line description.</summary>
    internal sealed record ModelFacts(
        int ImageSize, int PatchSize, int VisionWidth, int VisionHeads, int ContextLength, int VocabSize, int TextWidth, int TextHeads,
        int TextLayers, int EmbedDim, long ParameterCount, string Description);

    /// <summary>The resolved specs of one compilation and every diagnostic (reported on a separate output).</summary>
    internal sealed record ResolvedSpecs(EquatableArray<ModelToEmit> Models, EquatableArray<SpecDiagnostic> Diagnostics);
}

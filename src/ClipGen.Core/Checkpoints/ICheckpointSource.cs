namespace ClipGen.Checkpoints;

/// <summary>
/// An open checkpoint: its named tensors, read lazily. Dispose it to release the file (entries stop working then).
/// Obtain one from <see cref="IO.SafeTensorsReader.Open"/> (or <c>CheckpointReader.Open</c> in the ClipGen package, which also reads torch archives).
/// </summary>
public interface ICheckpointSource : IDisposable
{
    /// <summary>The path that was opened (the index file for a sharded checkpoint).</summary>
    string Path { get; }

    /// <summary>The detected format: <c>safetensors</c>, <c>safetensors-sharded</c>, <c>torch-zip</c> or <c>torchscript</c>.</summary>
    string Format { get; }

    /// <summary>The tensors, in file order.</summary>
    IReadOnlyList<TensorEntry> Entries { get; }

    /// <summary>
    /// Free-form string metadata: safetensors <c>__metadata__</c>; the scalars beside a wrapped <c>state_dict</c> (<c>epoch</c>, …);
    /// for TorchScript archives <c>provenance</c> (<c>openai</c> when it looks like OpenAI's CLIP) and the scalar attributes
    /// <c>input_resolution</c>, <c>context_length</c>, <c>vocab_size</c>, which are not listed as entries.
    /// </summary>
    IReadOnlyDictionary<string, string> Metadata { get; }
}

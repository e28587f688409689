using ClipGen.Checkpoints;
using ClipGen.Modeling;

namespace ClipGen.Cli.Commands;

/// <summary>Helpers shared by commands.</summary>
static class CommandHelpers
{
    /// <summary>
    /// The spec named by <c>--model</c> (name, alias or spec.yaml), or, without it, the spec inferred from the weights,
    /// with what was inferred or assumed printed to <paramref name="stderr"/>.
    /// </summary>
    public static Specs.ClipSpec ResolveOrInferSpec(string? modelArg, string weights, TextWriter stderr)
    {
        if (modelArg is not null) return ClipModelFactory.ResolveSpec(modelArg);
        var inferred = SpecInference.Infer(weights);
        foreach (var note in inferred.Notes) stderr.WriteLine(note);
        return inferred.Spec;
    }
}

using System.Globalization;
using ClipGen.Specs;

namespace ClipGen.Modeling;

/// <summary>
/// The memory a model may take: a spec whose planned weights cannot fit is refused before anything is allocated, with the
/// numbers, instead of failing deep inside libtorch's allocator (or being killed by the OOM killer) later.
/// </summary>
public static class ModelLimits
{
    /// <summary>Throws when the plan's weights exceed <see cref="Limits.MaxModelBytes"/>.</summary>
    /// <exception cref="ClipGenException">The model cannot fit.</exception>
    public static void CheckFits(ClipSpec spec, ClipPlan plan)
    {
        long need = plan.WeightBytes, max = Limits.MaxModelBytes;
        if (need <= max) return;
        throw new ClipGenException(
            $"spec '{spec.Name}' plans {plan.ParameterCount.ToString("N0", CultureInfo.InvariantCulture)} parameters ({Gib(need)} of float32 weights), more than the {Gib(max)} this process may use; " +
            "check its sizes (width, layers, vocab_size, context_length), or raise the limit with CLIPGEN_MAX_MODEL_BYTES");
    }

    static string Gib(long bytes) => (bytes / (1024.0 * 1024 * 1024)).ToString("0.##", CultureInfo.InvariantCulture) + " GiB";
}

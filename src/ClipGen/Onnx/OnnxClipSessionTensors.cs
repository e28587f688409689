using ClipGen.Backends;
using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace ClipGen.Onnx;

/// <summary>
/// <see cref="OnnxClipSession"/> over TorchSharp tensors: CPU tensors are handed to ONNX Runtime by pointer and the outputs
/// written straight into pre-allocated tensors, so a call copies no data.
/// </summary>
public static class OnnxClipSessionTensors
{
    /// <summary>Image features of a CPU float32 tensor [batch, 3, R, R]; ORT reads and writes the tensors' memory directly.</summary>
    public static Tensor EncodeImage(this OnnxClipSession session, Tensor pixels)
    {
        ArgumentNullException.ThrowIfNull(session);
        session.Require(ClipOnnxKind.Image);
        using var scope = NewDisposeScope();
        var px = Prepare(pixels, ScalarType.Float32, 4, ClipOnnxNames.PixelValues);
        var result = empty(px.shape[0], session.EmbedDim, dtype: ScalarType.Float32);
        RunSplit(session, px, TensorElementType.Float, ClipOnnxNames.PixelValues, result, ClipOnnxNames.ImageFeatures);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Text features of a CPU int64 tensor [batch, C].</summary>
    public static Tensor EncodeText(this OnnxClipSession session, Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(session);
        session.Require(ClipOnnxKind.Text);
        if (session.Spec is { } spec) ClipTensorInputs.CheckTokens(spec, ids);
        using var scope = NewDisposeScope();
        var tx = Prepare(ids, ScalarType.Int64, 2, ClipOnnxNames.InputIds);
        var result = empty(tx.shape[0], session.EmbedDim, dtype: ScalarType.Float32);
        RunSplit(session, tx, TensorElementType.Int64, ClipOnnxNames.InputIds, result, ClipOnnxNames.TextFeatures);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The full model's outputs as tensors.</summary>
    public static (Tensor ImageFeatures, Tensor TextFeatures, Tensor LogitsPerImage, Tensor LogitsPerText) Run(this OnnxClipSession session, Tensor pixels, Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(session);
        session.Require(ClipOnnxKind.Full);
        using var scope = NewDisposeScope();
        if (session.Spec is { } spec) ClipTensorInputs.CheckTokens(spec, ids);
        var px = Prepare(pixels, ScalarType.Float32, 4, ClipOnnxNames.PixelValues);
        var tx = Prepare(ids, ScalarType.Int64, 2, ClipOnnxNames.InputIds);
        long n = px.shape[0], m = tx.shape[0];
        var img = empty(n, session.EmbedDim);
        var txt = empty(m, session.EmbedDim);
        var lpi = empty(n, m);
        var lpt = empty(m, n);
        using (var i1 = Wrap(px, TensorElementType.Float))
        using (var i2 = Wrap(tx, TensorElementType.Int64))
        using (var o1 = Wrap(img, TensorElementType.Float))
        using (var o2 = Wrap(txt, TensorElementType.Float))
        using (var o3 = Wrap(lpi, TensorElementType.Float))
        using (var o4 = Wrap(lpt, TensorElementType.Float))
            session.Session.Run(session.DefaultRun, OnnxClipSession.FullInputs, [i1, i2], OnnxClipSession.FullOutputs, [o1, o2, o3, o4]);
        return (img.MoveToOuterDisposeScope(), txt.MoveToOuterDisposeScope(), lpi.MoveToOuterDisposeScope(), lpt.MoveToOuterDisposeScope());
    }

    /// <summary>The input itself when it already is a contiguous CPU tensor of the right dtype, else a converted copy.</summary>
    internal static Tensor Prepare(Tensor t, ScalarType dtype, int rank, string name)
    {
        if (t.dim() != rank) throw new ArgumentException($"{name} must have rank {rank}, not {t.dim()}");
        if (t.device_type == TorchSharp.DeviceType.CPU && t.dtype == dtype && t.is_contiguous()) return t.alias();
        return t.to(dtype, CPU).contiguous();
    }

    /// <summary>An OrtValue over the tensor's own CPU memory (no copy); the tensor must outlive it.</summary>
    internal static unsafe OrtValue Wrap(Tensor t, TensorElementType type)
    {
        // Tensor.bytes is a span over libtorch's buffer, so the address taken here stays valid while the tensor lives.
        fixed (byte* p = t.bytes)
            return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, type, t.shape, (IntPtr)p, t.NumberOfElements * t.ElementSize);
    }

    /// <summary>Runs a one-input, one-output encoder over contiguous CPU tensors (the input [batch, …], the output [batch, E]).</summary>
    static unsafe void RunSplit(OnnxClipSession session, Tensor input, TensorElementType inputType, string inputName, Tensor output, string outputName)
    {
        fixed (byte* src = input.bytes)
        fixed (byte* dst = output.bytes)
            session.RunSplit((int)input.shape[0], (nint)src, input.shape, (int)input.ElementSize, inputType, inputName, (nint)dst, outputName);
    }
}

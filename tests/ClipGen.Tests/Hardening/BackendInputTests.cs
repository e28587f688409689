using ClipGen.Backends;
using ClipGen.Modeling;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Hardening;

/// <summary>Defect 13 of issue 12: the ONNX backend validates inputs exactly as the Torch backend does.</summary>
public sealed class BackendInputTests : IDisposable
{
    readonly ClipModule _model;
    readonly IClipBackend _torch;
    readonly IClipBackend _onnx;

    public BackendInputTests()
    {
        manual_seed(3);
        _model = ClipModelFactory.Create("demo-tiny");
        _torch = ClipBackends.Create(_model, BackendKind.Torch);
        _onnx = ClipBackends.Create(_model, BackendKind.Onnx);
    }

    public void Dispose()
    {
        _onnx.Dispose();
        _torch.Dispose();
        _model.Dispose();
    }

    /// <summary>Both backends either throw the same one-line <see cref="ClipGenException"/> or give the same features.</summary>
    void Same(Func<IClipBackend, Tensor> call, string? expectedError)
    {
        string? Outcome(IClipBackend b, out Tensor? result)
        {
            result = null;
            try { result = call(b); return null; }
            catch (ClipGenException e) { return e.Message; }
        }
        var torchError = Outcome(_torch, out var t);
        var onnxError = Outcome(_onnx, out var o);
        try
        {
            Assert.Equal(torchError, onnxError);
            if (expectedError is not null) Assert.Contains(expectedError, torchError);
            else
            {
                Assert.Null(torchError);
                Assert.Equal(t!.shape, o!.shape);
                if (t.numel() > 0) TestUtil.AssertClose(t, o, "features", rel: 1e-4);
            }
        }
        finally
        {
            t?.Dispose();
            o?.Dispose();
        }
    }

    static Tensor Ids(long[,] values) => tensor(values);

    [Fact]
    public void Token_ids_outside_the_vocabulary_are_refused_by_both()
    {
        Same(b => b.EncodeText(Ids(new long[,] { { 258, -5, 0 } })), "token id -5 is outside the vocabulary [0, 259)");
        Same(b => b.EncodeText(Ids(new long[,] { { 258, 1_000_000_000, 0 } })), "token id 1000000000 is outside the vocabulary [0, 259)");
        Same(b => b.EncodeText(Ids(new long[,] { { 259 } })), "token id 259 is outside");
    }

    [Fact]
    public void Wrong_shapes_and_types_are_refused_by_both()
    {
        Same(b => b.EncodeText(zeros([2, 49], ScalarType.Int64)), "input_ids of shape [N,L] with 1 <= L <= 48, got [2,49]");
        Same(b => b.EncodeText(zeros([2, 0], ScalarType.Int64)), "got [2,0]");
        Same(b => b.EncodeText(zeros([6], ScalarType.Int64)), "got [6]");
        Same(b => b.EncodeText(zeros([2, 4], ScalarType.Float32)), "expects integer input_ids");
        Same(b => b.EncodeImage(zeros([1, 3, 31, 32])), "pixel_values of shape [N,3,32,32], got [1,3,31,32]");
        Same(b => b.EncodeImage(zeros([1, 3, 32, 32], ScalarType.Int64)), "expects floating-point pixel_values");
    }

    [Fact]
    public void An_empty_batch_gives_empty_features_in_both()
    {
        Same(b => b.EncodeText(zeros([0, 48], ScalarType.Int64)), null);
        Same(b => b.EncodeImage(zeros([0, 3, 32, 32])), null);
        using var e = _onnx.EncodeImage(zeros([0, 3, 32, 32]));
        Assert.Equal([0L, 64L], e.shape);
    }

    [Fact]
    public void Valid_inputs_give_the_same_features()
    {
        Same(b => b.EncodeText(Ids(new long[,] { { 3, 258, 0 }, { 258, 1, 2 } })), null);
        using var px = randn([2, 3, 32, 32]);
        Same(b => b.EncodeImage(px), null);
    }

    [Fact]
    public void The_onnx_session_checks_ids_from_its_own_metadata()
    {
        var session = ((OnnxClipBackend)_onnx).TextSession;
        var ids = new long[48];
        ids[0] = -5;
        var e = Assert.Throws<ClipGenException>(() => session.EncodeText(ids, 1));
        Assert.Contains("token id -5 is outside the vocabulary [0, 259)", e.Message);
        Assert.Empty(session.EncodeText([], 0));
    }
}

using ClipGen.Onnx;
using Microsoft.ML.OnnxRuntime;
using Xunit;

namespace ClipGen.Tests.Onnx;

/// <summary>The typed op wrappers that the CLIP graphs do not use, run once in ORT; and the runner's guards.</summary>
public class OnnxOpsTests
{
    static float[] RunOne(byte[] model, string input, float[] data, long[] shape, string output)
    {
        using var s = new InferenceSession(model);
        using var x = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var r = s.Run(new RunOptions(), [input], [x], [output]);
        return r[0].GetTensorDataAsSpan<float>().ToArray();
    }

    [Theory]
    [InlineData(17)]
    [InlineData(18)]
    public void Small_ops_compute_what_they_say(int opset)
    {
        var b = new OnnxGraphBuilder(new OnnxBuilderOptions { Opset = opset });
        var x = b.Input("x", OnnxElementType.Float, "n", 4);                            // [[1,2,3,4],[-1,-2,-3,-4]]
        var g = b.Gemm(x, b.Const([1f, 0, 0, 1, 0, 0, 0, 0], 4, 2), b.Const([10f, 20f], 2));  // x[:, :2] + [10, 20]
        var p = b.Sqrt(b.Pow(g, b.Const(2f)));                                         // |g|
        var w = b.Where(b.Cast(b.Relu(x), OnnxElementType.Bool), x, b.Const(0f));      // relu via Where
        var parts = b.Split(w, 1, [1L, 3L]);
        var m = b.ReduceMean(parts[1], [1], keepDims: true);                           // mean of x[:, 1:]
        var f = b.Flatten(b.Concat(1, p, m, b.Slice(x, [3], [0], [1], [-2])));         // + x[:, 3], x[:, 1]
        b.Output(f, "y", OnnxElementType.Float, "n", 5);
        var y = RunOne(b.ToBytes(), "x", [1, 2, 3, 4, -1, -2, -3, -4], [2, 4], "y");
        Assert.Equal(new float[] { 11, 22, 3, 4, 2, 9, 18, 0, -4, -2 }, y);
    }

    [Fact]
    public void Session_guards_kind_and_lengths()
    {
        using var f = OnnxFixture.Load("openai/tiny-vit");
        using var img = new OnnxClipSession(ClipOnnxExport.ImageEncoder(f.Plan, f.Weight).ToBytes());
        Assert.Throws<InvalidOperationException>(() => img.EncodeText(f.Ids, f.TextBatch));
        Assert.Throws<InvalidOperationException>(() => img.Run(f.Pixels, f.ImageBatch, f.Ids, f.TextBatch));
        Assert.Throws<ArgumentException>(() => img.EncodeImage(f.Pixels, f.ImageBatch + 1));
        Assert.Throws<InvalidOperationException>(() => new OnnxClipSession(new OnnxGraphBuilderFixture().Model));
    }

    sealed class OnnxGraphBuilderFixture
    {
        public byte[] Model { get; }

        public OnnxGraphBuilderFixture()
        {
            var b = new OnnxGraphBuilder();
            b.Output(b.Relu(b.Input("x", OnnxElementType.Float, 1)), "y", OnnxElementType.Float, 1);
            Model = b.ToBytes();
        }
    }
}

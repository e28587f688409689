namespace ClipGen.Checkpoints;

/// <summary>The element type of a stored tensor, as written in the file (before any conversion).</summary>
public enum TensorDType
{
    /// <summary>32-bit IEEE float (safetensors <c>F32</c>, <c>torch.FloatStorage</c>).</summary>
    F32,
    /// <summary>16-bit IEEE float (<c>F16</c>, <c>torch.HalfStorage</c>).</summary>
    F16,
    /// <summary>bfloat16 (<c>BF16</c>, <c>torch.BFloat16Storage</c>).</summary>
    BF16,
    /// <summary>64-bit IEEE float (<c>F64</c>, <c>torch.DoubleStorage</c>).</summary>
    F64,
    /// <summary>64-bit signed integer (<c>I64</c>, <c>torch.LongStorage</c>).</summary>
    I64,
    /// <summary>32-bit signed integer (<c>I32</c>, <c>torch.IntStorage</c>).</summary>
    I32,
    /// <summary>16-bit signed integer (<c>I16</c>, <c>torch.ShortStorage</c>).</summary>
    I16,
    /// <summary>8-bit signed integer (<c>I8</c>, <c>torch.CharStorage</c>).</summary>
    I8,
    /// <summary>8-bit unsigned integer (<c>U8</c>, <c>torch.ByteStorage</c>).</summary>
    U8,
    /// <summary>Boolean, one byte per element (<c>BOOL</c>, <c>torch.BoolStorage</c>).</summary>
    Bool,
}

/// <summary>Conversions between <see cref="TensorDType"/> and the names used by each file format.</summary>
public static class TensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this TensorDType dtype) => dtype switch
    {
        TensorDType.F64 or TensorDType.I64 => 8,
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 => 2,
        _ => 1,
    };

    /// <summary>Parses a safetensors dtype string (<c>F32</c>, <c>BF16</c>, …); false for types ClipGen does not read (e.g. <c>F8_E4M3</c>, <c>U32</c>).</summary>
    public static bool TryParseSafeTensors(string text, out TensorDType dtype)
    {
        switch (text)
        {
            case "F32": dtype = TensorDType.F32; return true;
            case "F16": dtype = TensorDType.F16; return true;
            case "BF16": dtype = TensorDType.BF16; return true;
            case "F64": dtype = TensorDType.F64; return true;
            case "I64": dtype = TensorDType.I64; return true;
            case "I32": dtype = TensorDType.I32; return true;
            case "I16": dtype = TensorDType.I16; return true;
            case "I8": dtype = TensorDType.I8; return true;
            case "U8": dtype = TensorDType.U8; return true;
            case "BOOL": dtype = TensorDType.Bool; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>The safetensors dtype string.</summary>
    public static string ToSafeTensorsName(this TensorDType dtype) => dtype switch
    {
        TensorDType.Bool => "BOOL",
        _ => dtype.ToString(),
    };

    /// <summary>Maps a legacy torch storage class name (<c>FloatStorage</c>, <c>HalfStorage</c>, …) to its dtype.</summary>
    internal static bool TryParseTorchStorage(string name, out TensorDType dtype)
    {
        switch (name)
        {
            case "FloatStorage": dtype = TensorDType.F32; return true;
            case "HalfStorage": dtype = TensorDType.F16; return true;
            case "BFloat16Storage": dtype = TensorDType.BF16; return true;
            case "DoubleStorage": dtype = TensorDType.F64; return true;
            case "LongStorage": dtype = TensorDType.I64; return true;
            case "IntStorage": dtype = TensorDType.I32; return true;
            case "ShortStorage": dtype = TensorDType.I16; return true;
            case "CharStorage": dtype = TensorDType.I8; return true;
            case "ByteStorage": dtype = TensorDType.U8; return true;
            case "BoolStorage": dtype = TensorDType.Bool; return true;
            default: dtype = default; return false;
        }
    }
}

using ClipGen.Specs;

namespace ClipGen.Modeling;

/// <summary>Helpers used by generated key tables.</summary>
public static class KeyTables
{
    public static KeyEntry Param(string key, params long[] shape) => new(key, shape.ToEquatableArray(), "float32", KeyKind.Parameter);
    public static KeyEntry Buffer(string key, params long[] shape) => new(key, shape.ToEquatableArray(), "float32", KeyKind.Buffer);
    public static KeyEntry I64Buffer(string key, params long[] shape) => new(key, shape.ToEquatableArray(), "int64", KeyKind.Buffer);
}

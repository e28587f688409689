using System;
using System.Collections;
using System.Globalization;
using System.Linq;
using System.Reflection;
using System.Text;
using ClipGen.Specs;

namespace ClipGen.Generators
{
    /// <summary>
    /// Writes a resolved <see cref="ClipSpec"/> as a C# object initializer, so that a generated model holds its spec as an object
    /// (no YAML parsed again at run time). It walks the spec records' settable properties in declaration order, so a field added
    /// to the spec format is emitted without a change here; the generator tests check that the object equals the resolved spec.
    /// </summary>
    internal static class SpecObjectWriter
    {
        public static string Write(ClipSpec spec, string indent)
        {
            var sb = new StringBuilder();
            WriteValue(sb, spec, typeof(ClipSpec), indent);
            return sb.ToString();
        }

        static void WriteValue(StringBuilder sb, object? value, Type type, string indent)
        {
            var underlying = Nullable.GetUnderlyingType(type);
            if (value == null) { sb.Append("null"); return; }
            if (underlying != null) type = underlying;
            switch (value)
            {
                case string s: sb.Append(Str(s)); return;
                case bool b: sb.Append(b ? "true" : "false"); return;
                case int i: sb.Append(i.ToString(CultureInfo.InvariantCulture)); return;
                case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)).Append('L'); return;
                case double d:
                    if (double.IsNaN(d) || double.IsInfinity(d)) throw new InvalidOperationException("a spec holds a non-finite number");
                    sb.Append(d.ToString("R", CultureInfo.InvariantCulture)).Append('d');
                    return;
            }
            if (type.IsEnum) { sb.Append(TypeName(type)).Append('.').Append(Enum.GetName(type, value)); return; }
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(EquatableArray<>))
            {
                var element = type.GetGenericArguments()[0];
                var items = ((IEnumerable)value).Cast<object>().ToList();
                sb.Append("new ").Append(TypeName(type)).Append("(new ").Append(TypeName(element)).Append("[] {");
                bool records = !(element.IsPrimitive || element.IsEnum || element == typeof(string));
                var itemIndent = indent + "    ";
                for (int i = 0; i < items.Count; i++)
                {
                    if (records) sb.Append(i == 0 ? "\n" : ",\n").Append(itemIndent);
                    else sb.Append(i == 0 ? " " : ", ");
                    WriteValue(sb, items[i], element, itemIndent);
                }
                if (items.Count == 0) sb.Append("})");
                else if (records) sb.Append(",\n").Append(indent).Append("})");
                else sb.Append(" })");
                return;
            }
            // A spec record: every property with a setter (init), in declaration order.
            var props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.SetMethod != null && p.GetIndexParameters().Length == 0)
                .OrderBy(p => p.MetadataToken)
                .ToList();
            var inner = indent + "    ";
            sb.Append("new ").Append(TypeName(type)).Append('\n').Append(indent).Append("{\n");
            foreach (var p in props)
            {
                sb.Append(inner).Append(p.Name).Append(" = ");
                WriteValue(sb, p.GetValue(value), p.PropertyType, inner);
                sb.Append(",\n");
            }
            sb.Append(indent).Append('}');
        }

        static string TypeName(Type t)
        {
            if (t == typeof(int)) return "int";
            if (t == typeof(long)) return "long";
            if (t == typeof(double)) return "double";
            if (t == typeof(string)) return "string";
            if (t == typeof(bool)) return "bool";
            if (t.IsGenericType)
            {
                var name = t.GetGenericTypeDefinition().FullName!;
                name = name.Substring(0, name.IndexOf('`'));
                return "global::" + name + "<" + string.Join(", ", t.GetGenericArguments().Select(TypeName)) + ">";
            }
            return "global::" + t.FullName!.Replace('+', '.');
        }

        static string Str(string s)
        {
            var sb = new StringBuilder("\"");
            foreach (var c in s)
            {
                switch (c)
                {
                    case '\\': sb.Append("\\\\"); break;
                    case '"': sb.Append("\\\""); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 32 || c > 126) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            return sb.Append('"').ToString();
        }
    }
}

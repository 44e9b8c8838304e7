#include "onnx_proto.h"

#include <cstring>

namespace tlkit::model::onnx {
namespace {

enum WireType : int { kVarint = 0, kLengthDelimited = 2, kFixed32 = 5 };

// AttributeProto.AttributeType values.
enum AttributeType : int { kAttrFloat = 1, kAttrInt = 2, kAttrString = 3, kAttrInts = 7 };

// Field numbers of onnx.proto.
namespace field {
constexpr int kAttrName = 1, kAttrF = 2, kAttrI = 3, kAttrS = 4, kAttrInts = 8, kAttrType = 20;
constexpr int kNodeInput = 1, kNodeOutput = 2, kNodeName = 3, kNodeOpType = 4, kNodeAttribute = 5;
constexpr int kTensorDims = 1, kTensorDataType = 2, kTensorName = 8, kTensorRawData = 9;
constexpr int kValueInfoName = 1, kValueInfoType = 2;
constexpr int kTypeTensor = 1, kTypeTensorElemType = 1, kTypeTensorShape = 2;
constexpr int kShapeDim = 1, kDimValue = 1, kDimParam = 2;
constexpr int kGraphNode = 1, kGraphName = 2, kGraphInitializer = 5, kGraphDoc = 10,
              kGraphInput = 11, kGraphOutput = 12;
constexpr int kModelIrVersion = 1, kModelProducerName = 2, kModelProducerVersion = 3, kModelDoc = 6,
              kModelGraph = 7, kModelOpset = 8, kModelMetadata = 14;
constexpr int kOpsetDomain = 1, kOpsetVersion = 2;
constexpr int kEntryKey = 1, kEntryValue = 2;
}  // namespace field

}  // namespace

void Message::raw_varint(std::uint64_t value) {
  while (value >= 0x80) {
    data_.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  data_.push_back(static_cast<char>(value));
}

void Message::key(int field, int wire_type) {
  raw_varint((static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
}

Message& Message::varint(int field, std::uint64_t value) {
  key(field, kVarint);
  raw_varint(value);
  return *this;
}

Message& Message::float32(int field, float value) {
  key(field, kFixed32);
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 4; ++i) data_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  return *this;
}

Message& Message::bytes(int field, const std::string& value) {
  key(field, kLengthDelimited);
  raw_varint(value.size());
  data_ += value;
  return *this;
}

Message attribute_int(const std::string& name, std::int64_t value) {
  Message m;
  m.bytes(field::kAttrName, name).int64(field::kAttrI, value).int64(field::kAttrType, kAttrInt);
  return m;
}

Message attribute_float(const std::string& name, float value) {
  Message m;
  m.bytes(field::kAttrName, name).float32(field::kAttrF, value).int64(field::kAttrType, kAttrFloat);
  return m;
}

Message attribute_string(const std::string& name, const std::string& value) {
  Message m;
  m.bytes(field::kAttrName, name).bytes(field::kAttrS, value).int64(field::kAttrType, kAttrString);
  return m;
}

Message attribute_ints(const std::string& name, const std::vector<std::int64_t>& values) {
  Message m;
  m.bytes(field::kAttrName, name);
  for (auto v : values) m.int64(field::kAttrInts, v);
  m.int64(field::kAttrType, kAttrInts);
  return m;
}

Message node(const std::string& op_type, const std::vector<std::string>& inputs,
             const std::vector<std::string>& outputs, const std::string& name,
             const std::vector<Message>& attributes) {
  Message m;
  for (const auto& in : inputs) m.bytes(field::kNodeInput, in);
  for (const auto& out : outputs) m.bytes(field::kNodeOutput, out);
  m.bytes(field::kNodeName, name).bytes(field::kNodeOpType, op_type);
  for (const auto& a : attributes) m.message(field::kNodeAttribute, a);
  return m;
}

// Little-endian hosts only (x86-64, AArch64): raw_data is the tensor's memory as it is.
Message tensor(const std::string& name, const std::vector<std::int64_t>& dims, DataType type,
               const void* data, size_t byte_count) {
  Message m;
  for (auto d : dims) m.int64(field::kTensorDims, d);
  m.int64(field::kTensorDataType, type).bytes(field::kTensorName, name);
  m.bytes(field::kTensorRawData, std::string(static_cast<const char*>(data), byte_count));
  return m;
}

Message float_value_info(const std::string& name, const std::vector<std::int64_t>& dims,
                         const std::string& dynamic_name) {
  Message shape;
  for (auto d : dims) {
    Message dim;
    if (d < 0) {
      dim.bytes(field::kDimParam, dynamic_name);
    } else {
      dim.int64(field::kDimValue, d);
    }
    shape.message(field::kShapeDim, dim);
  }
  Message tensor_type;
  tensor_type.int64(field::kTypeTensorElemType, kFloat).message(field::kTypeTensorShape, shape);
  Message type;
  type.message(field::kTypeTensor, tensor_type);
  Message m;
  m.bytes(field::kValueInfoName, name).message(field::kValueInfoType, type);
  return m;
}

Message graph(const GraphParts& parts) {
  Message m;
  for (const auto& n : parts.nodes) m.message(field::kGraphNode, n);
  m.bytes(field::kGraphName, parts.name);
  for (const auto& t : parts.initializers) m.message(field::kGraphInitializer, t);
  if (!parts.doc.empty()) m.bytes(field::kGraphDoc, parts.doc);
  for (const auto& v : parts.inputs) m.message(field::kGraphInput, v);
  for (const auto& v : parts.outputs) m.message(field::kGraphOutput, v);
  return m;
}

std::string model(const ModelParts& parts) {
  Message m;
  m.int64(field::kModelIrVersion, parts.ir_version)
      .bytes(field::kModelProducerName, parts.producer_name)
      .bytes(field::kModelProducerVersion, parts.producer_version);
  if (!parts.doc.empty()) m.bytes(field::kModelDoc, parts.doc);
  m.message(field::kModelGraph, parts.graph);
  Message opset;
  opset.bytes(field::kOpsetDomain, "").int64(field::kOpsetVersion, parts.opset);
  m.message(field::kModelOpset, opset);
  for (const auto& [key, value] : parts.metadata) {
    Message entry;
    entry.bytes(field::kEntryKey, key).bytes(field::kEntryValue, value);
    m.message(field::kModelMetadata, entry);
  }
  return m.data();
}

}  // namespace tlkit::model::onnx

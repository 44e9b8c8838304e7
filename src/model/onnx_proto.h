#pragma once
// The ONNX messages tlkit writes, encoded straight into protobuf's wire format (no protobuf or
// libonnx at build time). Field numbers are those of onnx/onnx.proto (IR version 7); a message is
// built bottom-up as a byte string and nested as a length-delimited field of its parent.
//
// Wire format: each field is a key varint (field_number << 3 | wire_type) followed by a varint
// (type 0), 4 little-endian bytes (type 5) or a length varint and that many bytes (type 2).
// Repeated scalars are written one key per element (proto2's unpacked form, which every parser
// reads).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tlkit::model::onnx {

// A protobuf message under construction.
class Message {
 public:
  Message& varint(int field, std::uint64_t value);
  Message& int64(int field, std::int64_t value) {
    return varint(field, static_cast<std::uint64_t>(value));
  }
  Message& float32(int field, float value);
  Message& bytes(int field, const std::string& value);
  Message& message(int field, const Message& value) { return bytes(field, value.data_); }
  const std::string& data() const { return data_; }

 private:
  void key(int field, int wire_type);
  void raw_varint(std::uint64_t value);
  std::string data_;
};

// TensorProto.DataType values used here.
enum DataType : int { kFloat = 1, kInt64 = 7 };

// AttributeProto: one named attribute of a node.
Message attribute_int(const std::string& name, std::int64_t value);
Message attribute_float(const std::string& name, float value);
Message attribute_string(const std::string& name, const std::string& value);
Message attribute_ints(const std::string& name, const std::vector<std::int64_t>& values);

// NodeProto.
Message node(const std::string& op_type, const std::vector<std::string>& inputs,
             const std::vector<std::string>& outputs, const std::string& name,
             const std::vector<Message>& attributes = {});

// TensorProto with raw little-endian data (float32 or int64).
Message tensor(const std::string& name, const std::vector<std::int64_t>& dims, DataType type,
               const void* data, size_t byte_count);

// ValueInfoProto of a float tensor; a negative dimension becomes the symbolic `dynamic_name`.
Message float_value_info(const std::string& name, const std::vector<std::int64_t>& dims,
                         const std::string& dynamic_name = "batch");

struct GraphParts {
  std::string name;
  std::vector<Message> nodes;
  std::vector<Message> initializers;
  std::vector<Message> inputs;
  std::vector<Message> outputs;
  std::string doc;
};
Message graph(const GraphParts& parts);

struct ModelParts {
  std::int64_t ir_version = 7;
  std::int64_t opset = 13;
  std::string producer_name;
  std::string producer_version;
  std::string doc;
  Message graph;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props, in order
};
// The serialised ModelProto.
std::string model(const ModelParts& parts);

}  // namespace tlkit::model::onnx

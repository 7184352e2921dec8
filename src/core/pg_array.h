// PostgreSQL's text form of an array, for sending many values as one statement parameter.
#pragma once

#include <string>

namespace chatterd {

// Appends one element to an array literal being built in out ("{a,b}" is built as "{", the
// elements separated by ",", then "}"). The value is quoted, its '"' and '\' escaped, so any
// text survives (commas, braces, spaces, the word NULL); a null value is the SQL NULL element.
void append_pg_array_element(std::string& out, const char* value);

}  // namespace chatterd

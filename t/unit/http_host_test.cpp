#include "core/http_host.h"

#include <gtest/gtest.h>

#include <string>

namespace chatterd {
namespace {

TEST(HttpHost, NamesAndAddressesWithOrWithoutAPort) {
    for (const char* host :
         {"localhost", "chatter.example", "chatter.example:8080", "CHATTER.Example.ORG",
          "xn--bcher-kva.example", "my_host-1.example.", "10.0.0.1", "127.0.0.1:443", "[::1]",
          "[::1]:8443", "[2001:db8::a:b]", "[::ffff:192.0.2.1]:80", "a", "a:1", "a:65535"}) {
        EXPECT_TRUE(valid_http_host(host)) << host;
    }
}

TEST(HttpHost, WhatWouldChangeWhereTheUrlPointsIsRefused) {
    for (const char* host :
         {"chatter.example@evil.example", "user:pw@chatter.example", "evil.example/x",
          "evil.example\\x", "evil.example?x", "evil.example#x", "chatter example"}) {
        EXPECT_FALSE(valid_http_host(host)) << host;
    }
}

TEST(HttpHost, MarkupQuotesAndControlsAreRefused) {
    for (const char* host :
         {"\"><script>", "<script>",       "a\"b", "a'b", "a>b", "a<b",  "a\tb", "a\rb",
          "a\nb",        "%65vil.example", "a~b",  "a;b", "a,b", "a=b",  "a!b",  "a$b",
          "a&b",         "a(b)",           "a*b",  "a+b", "a`b", "a{b}", "a|b",  "a^b"}) {
        EXPECT_FALSE(valid_http_host(host)) << host;
    }
    EXPECT_FALSE(valid_http_host(std::string("a\0b", 3)));
    EXPECT_FALSE(valid_http_host("caf\xC3\xA9.example"));  // a Unicode name must come punycoded
}

TEST(HttpHost, PortsAreDigitsUpTo65535) {
    for (const char* host : {"a:", "a:65536", "a:123456", "a:-1", "a:8o", "a: 80", "a:80:80",
                             "[::1]:", "[::1]:x", ":80"}) {
        EXPECT_FALSE(valid_http_host(host)) << host;
    }
}

TEST(HttpHost, OnlyIpv6AddressesGoInBrackets) {
    for (const char* host :
         {"[]", "[::1", "::1]", "[::1]x", "[fe80::1%25eth0]", "[fe80::1%eth0]", "[v1.fe80::a+en1]",
          "[localhost]", "[1.2.3.4]", "[::1]]", "[[::1]]", "::1", "[2001:db8::g]"}) {
        EXPECT_FALSE(valid_http_host(host)) << host;
    }
}

// Found by fuzz/http_host_fuzz.cpp: inet_pton read the literal only up to a NUL, and accepted the
// bytes after it.
TEST(HttpHost, NulInsideIpv6LiteralIsRefused) {
    EXPECT_FALSE(valid_http_host(std::string("[::1\0\"><script>]", 16)));
    EXPECT_FALSE(valid_http_host(std::string("[2001:db8::f\0\0f004:3:8229]:80", 29)));
    EXPECT_TRUE(valid_http_host("[2001:db8::f004:3:8229]:80"));
}

TEST(HttpHost, EmptyAndOverlongNamesAreRefused) {
    EXPECT_FALSE(valid_http_host(""));
    EXPECT_TRUE(valid_http_host(std::string(253, 'a')));
    EXPECT_FALSE(valid_http_host(std::string(254, 'a')));
    EXPECT_TRUE(valid_http_host(std::string(253, 'a') + ":80"));
}

}  // namespace
}  // namespace chatterd

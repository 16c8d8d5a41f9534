// A C++ suite against leakhost.h: std::string, std::vector, std::map and operator new are all counted,
// because libc++'s operator new calls malloc, which the SDK wraps.
//
// | layer | test | leaks per run |
// |---|---|---|
// | UnitTests | test_strings_and_vectors, test_unique_ptr, test_map | nothing |
// | cxx.Registry | test_registers_and_forgets | a Node, a Widget and its name (3 blocks, 56 bytes); type "cxx::Widget" +1 |
// | | test_registers_and_removes | nothing |
#include <leakhost.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cxx {

// Counted under its type's name while alive.
struct Widget {
    explicit Widget(int id) : id(id), name("widget-" + std::to_string(id) + "-with-a-long-name") {
        LH_TRACK(cxx::Widget, +1);
    }
    ~Widget() { LH_TRACK(cxx::Widget, -1); }
    int id;
    std::string name;
};

// A registry that a test can forget to clean up; a linked list so that every leaked Widget is one block.
struct Node {
    Widget *widget;
    Node *next;
};
Node *registry = nullptr;

}  // namespace cxx

static lh_result test_strings_and_vectors() {
    std::vector<std::string> words;
    for (int i = 0; i < 100; i++)
        words.push_back("word number " + std::to_string(i) + " which is long enough to be on the heap");
    LH_CHECK_EQ_INT(words.size(), 100);
    LH_CHECK_STR_EQ(words[42].c_str(), "word number 42 which is long enough to be on the heap");
    return LH_PASS;
}

static lh_result test_unique_ptr() {
    auto w = std::make_unique<cxx::Widget>(7);
    LH_CHECK_EQ_INT(w->id, 7);
    LH_CHECK_STR_EQ(w->name.c_str(), "widget-7-with-a-long-name");
    return LH_PASS;
}

static lh_result test_map() {
    std::map<int, std::string> squares;
    for (int i = 0; i < 50; i++)
        squares[i] = std::to_string(i * i);
    LH_CHECK_STR_EQ(squares[12].c_str(), "144");
    return LH_PASS;
}

static lh_result test_registers_and_forgets() {
    // The bug: the widget is registered and never removed.
    static int next_id = 1;
    cxx::registry = new cxx::Node{new cxx::Widget(next_id++), cxx::registry};
    LH_CHECK(cxx::registry->widget->id > 0);
    return LH_PASS;
}

static lh_result test_registers_and_removes() {
    cxx::Node *node = new cxx::Node{new cxx::Widget(-1), nullptr};
    LH_CHECK_EQ_INT(node->widget->id, -1);
    delete node->widget;
    delete node;
    return LH_PASS;
}

extern "C" void lh_declare(void) {
    lh_test("test_strings_and_vectors", test_strings_and_vectors);
    lh_test("test_unique_ptr", test_unique_ptr);
    lh_test("test_map", test_map);
    lh_layer_id registry = lh_layer("cxx.Registry", nullptr);
    lh_test_in(registry, "test_registers_and_forgets", test_registers_and_forgets);
    lh_test_in(registry, "test_registers_and_removes", test_registers_and_removes);
}

int Stack::pop() {
    int top = items_.back();
    items_.pop_back();
    return top;
}

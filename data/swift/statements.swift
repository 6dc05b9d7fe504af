let total = prices.reduce(0, +)
if total > limit {
    print("over budget")
}
return total
